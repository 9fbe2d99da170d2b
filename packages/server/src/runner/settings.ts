import { baseUrlVariable, type IntegrationDefinition } from '@latchkey/core';
import ipaddr from 'ipaddr.js';
import { bareHost, isHostAllowedByName, type OutboundPolicy } from './outbound-guard.js';
import type { Resolver } from './outbound-http.js';

export interface RunnerSettings {
  /** `LATCHKEY_BASE_URL_*` overrides, read once at start-up. */
  baseUrlOverrides: Record<string, string>;
  policy: OutboundPolicy;
  timeoutMs: number;
  maxResponseBytes: number;
  maxRedirects: number;
  /** DNS resolver for guarded requests (tests inject one to simulate a name resolving to a private address). */
  resolver?: Resolver;
}

/** An integration's base URL for a variant, after configuration overrides. */
export function baseUrlFor(
  settings: RunnerSettings,
  integration: IntegrationDefinition,
  variant?: string,
): string {
  const name =
    variant ?? ('default' in integration.baseUrls ? 'default' : Object.keys(integration.baseUrls)[0]);
  if (!name) throw new Error(`${integration.displayName} has no base URL`);
  const url = settings.baseUrlOverrides[baseUrlVariable(integration.id, name)] ?? integration.baseUrls[name];
  if (!url) throw new Error(`${integration.displayName} has no base URL "${name}"`);
  return url;
}

/** Origins of an integration's configured base URLs: requests there are trusted configuration, not user input. */
export function trustedOrigins(settings: RunnerSettings, integration: IntegrationDefinition): Set<string> {
  return new Set(
    Object.keys(integration.baseUrls).map(
      (variant) => new URL(baseUrlFor(settings, integration, variant)).origin,
    ),
  );
}

/**
 * Whether `LATCHKEY_OUTBOUND_ALLOW` lists a URL host, by name or by an address or range that holds it. Only such
 * hosts (local development, tests) may receive a credential over plain http://.
 */
export function isListedInOutboundAllow(policy: OutboundPolicy, hostname: string): boolean {
  if (isHostAllowedByName(policy, hostname)) return true;
  const host = bareHost(hostname);
  if (!ipaddr.isValid(host)) return false;
  const address = ipaddr.process(host);
  return policy.cidrs.some(([range, bits]) => range.kind() === address.kind() && address.match(range, bits));
}
