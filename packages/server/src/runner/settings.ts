import { baseUrlVariable, type IntegrationDefinition } from '@latchkey/core';
import ipaddr from 'ipaddr.js';
import { wholeNumberVariable } from '../environment.js';
import { bareHost, isHostAllowedByName, type OutboundPolicy, parseOutboundAllow } from './outbound-guard.js';
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

export function runnerSettingsFromEnv(env: NodeJS.ProcessEnv): RunnerSettings {
  const baseUrlOverrides: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('LATCHKEY_BASE_URL_') || !value) continue;
    // Checked at start-up: a malformed override would otherwise fail every run of the integration's nodes.
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new Error(`${name} must be an http:// or https:// URL`);
    }
    baseUrlOverrides[name] = value.replace(/\/+$/, '');
  }
  return {
    baseUrlOverrides,
    policy: parseOutboundAllow(env.LATCHKEY_OUTBOUND_ALLOW),
    timeoutMs: wholeNumberVariable(env, 'LATCHKEY_OUTBOUND_TIMEOUT_MS', 15_000),
    maxResponseBytes: wholeNumberVariable(env, 'LATCHKEY_OUTBOUND_MAX_BYTES', 1024 * 1024),
    maxRedirects: 5,
  };
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
