import ipaddr from 'ipaddr.js';

type Address = ReturnType<typeof ipaddr.parse>;
type Cidr = [Address, number];

/**
 * Destinations a workflow may not reach by default: every entry of the IANA IPv4 and IPv6 Special-Purpose
 * Address Registries that is not globally reachable, plus multicast and the deprecated IPv6 blocks. The IETF
 * Protocol Assignments blocks (192.0.0.0/24, 2001::/23) are refused whole, including the few anycast service
 * addresses inside them the registry marks globally reachable (PCP, TURN, AMT, AS112, ORCHID): no HTTP API a
 * workflow calls lives there. Entries the registry marks globally reachable outside those blocks (AS112,
 * AMT relays) are allowed. NAT64 (64:ff9b::/96), 6to4 (2002::/16) and IPv4-mapped addresses are judged by the
 * IPv4 address they embed (below). `outbound-guard.test.ts` holds the registries as a table.
 */
const REFUSED_RANGES: string[] = [
  '0.0.0.0/8', // "this network" (RFC 791, RFC 1122)
  '10.0.0.0/8', // private use (RFC 1918)
  '100.64.0.0/10', // shared address space, CGNAT (RFC 6598); Alibaba metadata 100.100.100.200
  '127.0.0.0/8', // loopback (RFC 1122)
  '169.254.0.0/16', // link-local (RFC 3927); cloud metadata 169.254.169.254, ECS 169.254.170.2
  '172.16.0.0/12', // private use (RFC 1918)
  '192.0.0.0/24', // IETF protocol assignments (RFC 6890, 7335, 7600, 7723, 8155, 8880)
  '192.0.2.0/24', // documentation, TEST-NET-1 (RFC 5737)
  '192.88.99.0/24', // deprecated 6to4 relay anycast (RFC 7526)
  '192.168.0.0/16', // private use (RFC 1918)
  '198.18.0.0/15', // benchmarking (RFC 2544)
  '198.51.100.0/24', // documentation, TEST-NET-2 (RFC 5737)
  '203.0.113.0/24', // documentation, TEST-NET-3 (RFC 5737)
  '224.0.0.0/4', // multicast (RFC 5771)
  '240.0.0.0/4', // reserved (RFC 1112)
  '255.255.255.255/32', // limited broadcast (RFC 919, RFC 8190)
  '::/96', // unspecified, loopback and the deprecated IPv4-compatible addresses (RFC 4291)
  '100::/64', // discard-only (RFC 6666)
  '100:0:0:1::/64', // dummy prefix (RFC 9780)
  '64:ff9b:1::/48', // local-use IPv4/IPv6 translation (RFC 8215)
  '2001::/23', // IETF protocol assignments: Teredo, benchmarking, ORCHID… (RFC 2928, 4380, 5180, 7343)
  '2001:db8::/32', // documentation (RFC 3849)
  '3fff::/20', // documentation (RFC 9637)
  '5f00::/16', // segment routing SIDs (RFC 9602)
  'fc00::/7', // unique local (RFC 4193); AWS IMDS fd00:ec2::254
  'fe80::/10', // link-local (RFC 4291)
  'fec0::/10', // deprecated site-local (RFC 3879)
  'ff00::/8', // multicast (RFC 4291)
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
