import type { CredentialTypeDefinition } from './contract.js';

/**
 * Where a credential may be sent: `null` when its type does not restrict hosts (the integration's own base
 * URLs decide), else the hosts it lists — possibly none, for a credential saved before its type required them.
 */
export function credentialDestinations(
  definition: Pick<CredentialTypeDefinition, 'allowedHosts'>,
  publicFields: Record<string, string>,
): string[] | null {
  return definition.allowedHosts ? definition.allowedHosts(publicFields) : null;
}

/** Whether `host` is one of `allowed` or a subdomain of one (a leading `*.` in the list means the same). */
export function isHostAllowed(host: string, allowed: readonly string[]): boolean {
  // A URL's hostname as `new URL` gives it: IPv6 in brackets, possibly a trailing dot.
  const h = host
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '');
  return allowed.some((domain) => {
    const d = domain.toLowerCase().replace(/^\*\./, '').replace(/\.$/, '');
    return d !== '' && (h === d || h.endsWith(`.${d}`));
  });
}

/** How messages name a credential: "The credential 'Billing API'" (saved), "This credential" (a form's data). */
export function credentialSubject(name?: string): string {
  return name === undefined ? 'This credential' : `The credential '${name}'`;
}

/** Why a credential without any allowed host is not applied, and who can change that. */
export function needsAllowedDomainsMessage(subject: string): string {
  return `${subject} needs allowed domains before it can be used: its creator, an owner or an admin can add them.`;
}

/** Why a credential is not sent to a host outside its list. */
export function hostNotAllowedMessage(subject: string, allowed: readonly string[]): string {
  return `${subject} may only be sent to ${allowed.join(', ')}.`;
}

/**
 * The refusal for sending a credential to `host`, or undefined when it may go there. One rule for the runner
 * (every request) and for saving a node (its URL), so the editor refuses what a run would refuse.
 */
export function destinationRefusal(
  subject: string,
  destinations: readonly string[] | null,
  host: string,
): string | undefined {
  if (destinations === null) return undefined;
  if (destinations.length === 0) return needsAllowedDomainsMessage(subject);
  return isHostAllowed(host, destinations) ? undefined : hostNotAllowedMessage(subject, destinations);
}
