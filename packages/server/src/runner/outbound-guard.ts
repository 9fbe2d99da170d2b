import ipaddr from 'ipaddr.js';

type Address = ReturnType<typeof ipaddr.parse>;
type Cidr = [Address, number];

/** Destinations a workflow may not reach by default: loopback, private, link-local, metadata, reserved. */
const REFUSED_RANGES: string[] = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10', // CGNAT; Alibaba metadata 100.100.100.200
  '127.0.0.0/8',
  '169.254.0.0/16', // link-local; cloud metadata 169.254.169.254, ECS 169.254.170.2
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '224.0.0.0/4',
  '240.0.0.0/4',
  '255.255.255.255/32',
  '::/128',
  '::1/128',
  'fe80::/10',
  'fc00::/7', // unique local; AWS IMDS fd00:ec2::254
  'ff00::/8',
];
const REFUSED: Cidr[] = REFUSED_RANGES.map((cidr) => ipaddr.parseCIDR(cidr));
const REFUSED_NAMES = [/^localhost\.?$/i, /\.localhost\.?$/i, /^metadata\.google\.internal\.?$/i];

const NAT64 = ipaddr.parseCIDR('64:ff9b::/96');
const SIX_TO_FOUR = ipaddr.parseCIDR('2002::/16');

/** IPv4 addresses embedded in an IPv6 address (mapped, NAT64, 6to4), which must pass the same check. */
function embeddedIPv4(address: Address): Address[] {
  if (address.kind() !== 'ipv6') return [];
  const v6 = address as ipaddr.IPv6;
  const parts = v6.parts;
  const fromWords = (hi: number, lo: number) => ipaddr.parse(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`);
  if (v6.isIPv4MappedAddress()) return [v6.toIPv4Address()];
  if (v6.match(NAT64)) return [fromWords(parts[6] ?? 0, parts[7] ?? 0)];
  if (v6.match(SIX_TO_FOUR)) return [fromWords(parts[1] ?? 0, parts[2] ?? 0)];
  return [];
}

function inRanges(address: Address, ranges: Cidr[]): boolean {
  return ranges.some(([range, bits]) => range.kind() === address.kind() && address.match(range, bits));
}

export class OutboundRefusedError extends Error {
  override name = 'OutboundRefusedError';
}

export interface OutboundPolicy {
  /** Host names allowed as written (exact, case-insensitive), whatever they resolve to. */
  hosts: Set<string>;
  /** Address ranges allowed although they are in a refused range. */
  cidrs: Cidr[];
}

/** Parses `LATCHKEY_OUTBOUND_ALLOW`: comma-separated host names, IP addresses or CIDRs. */
export function parseOutboundAllow(value: string | undefined): OutboundPolicy {
  const policy: OutboundPolicy = { hosts: new Set(), cidrs: [] };
  for (const raw of (value ?? '').split(',')) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (ipaddr.isValidCIDR(entry)) policy.cidrs.push(ipaddr.parseCIDR(entry));
    else if (ipaddr.isValid(entry)) {
      const address = ipaddr.parse(entry);
      policy.cidrs.push([address, address.kind() === 'ipv4' ? 32 : 128]);
    } else if (/^[a-z0-9.-]+$/.test(entry)) policy.hosts.add(entry.replace(/\.$/, ''));
    else throw new Error(`LATCHKEY_OUTBOUND_ALLOW: "${entry}" is not a host name, an IP address or a CIDR`);
  }
  return policy;
}

/** Strips the brackets of an IPv6 URL host. */
export function bareHost(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

export function isHostAllowedByName(policy: OutboundPolicy, hostname: string): boolean {
  return policy.hosts.has(bareHost(hostname).toLowerCase().replace(/\.$/, ''));
}

/** Refuses names that always mean "this machine" or a metadata service, before any lookup. */
export function checkHostName(policy: OutboundPolicy, hostname: string): void {
  if (isHostAllowedByName(policy, hostname)) return;
  const host = bareHost(hostname);
  if (REFUSED_NAMES.some((pattern) => pattern.test(host))) {
    throw new OutboundRefusedError(`requests to ${host} are not allowed`);
  }
  if (ipaddr.isValid(host)) checkAddress(policy, host);
}

/** Refuses an address in a refused range (including IPv4 embedded in IPv6) unless the allow-list has it. */
export function checkAddress(policy: OutboundPolicy, text: string): void {
  let address: Address;
  try {
    address = ipaddr.process(text.split('%')[0] ?? text);
  } catch {
    throw new OutboundRefusedError('the destination address could not be parsed');
  }
  for (const candidate of [address, ...embeddedIPv4(address)]) {
    if (
      inRanges(candidate, REFUSED) &&
      !inRanges(candidate, policy.cidrs) &&
      !inRanges(address, policy.cidrs)
    ) {
      throw new OutboundRefusedError(
        `requests to private, loopback or metadata addresses (${candidate.toString()}) are not allowed`,
      );
    }
  }
}
