import {
  type CredentialTypeDefinition,
  credentialDestinations,
  destinationRefusal,
  type IntegrationDefinition,
  type OutgoingRequest,
} from '@latchkey/core';
import type { Services } from '../services.js';
import { OutboundRefusedError } from './outbound-guard.js';
import { OutboundError } from './outbound-http.js';
import { isListedInOutboundAllow, trustedOrigins } from './settings.js';

/** A credential kept from a host: not one it lists, or it lists none yet. The message says which and why. */
export class CredentialDestinationError extends Error {
  override name = 'CredentialDestinationError';
}

/** Checks a request that carries a credential, as it will be sent, and returns it unchanged (or throws). */
export type CredentialDestinationCheck = (request: OutgoingRequest) => OutgoingRequest;

/**
 * Where a credential may go: to a host its type's list allows (default deny: a type with `allowedHosts` and an
 * empty list goes nowhere), and over plain http:// only to a host `LATCHKEY_OUTBOUND_ALLOW` lists. Checked on
 * every request it is applied to, redirects included, and on an OAuth2 type's token requests (they carry the
 * client secret).
 */
export function destinationCheck(
  svc: Services,
  definition: CredentialTypeDefinition,
  publicFields: Readonly<Record<string, string>>,
  subject: string,
): CredentialDestinationCheck {
  const destinations = credentialDestinations(definition, publicFields as Record<string, string>);
  return (request) => {
    // The URL as it will be sent: some credentials supply it (a Slack webhook is its own URL).
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      throw new OutboundError('the request URL is not valid');
    }
    const refusal = destinationRefusal(subject, destinations, url.hostname);
    if (refusal) throw new CredentialDestinationError(refusal);
    if (url.protocol === 'http:' && !isListedInOutboundAllow(svc.runnerSettings.policy, url.hostname)) {
      throw new OutboundRefusedError(
        `${subject} is never sent over plain http:// (${url.host} is not in LATCHKEY_OUTBOUND_ALLOW): use https://`,
      );
    }
    return request;
  };
}

/** The outbound options for an integration: its configured base URLs are trusted, every other URL guarded. */
export function outboundOptions(svc: Services, integration: IntegrationDefinition) {
  const trusted = trustedOrigins(svc.runnerSettings, integration);
  return { ...svc.runnerSettings, guard: (url: URL) => !trusted.has(url.origin) };
}
