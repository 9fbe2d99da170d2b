import type { LookupAddress } from 'node:dns';
import ipaddr from 'ipaddr.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readConfig } from '../config.js';
import type { Services } from '../services.js';
import {
  freshFakeData,
  PARAMS,
  type RunnerTestEnv,
  type RunnerTestPerson,
  runnerTestPerson,
  startRunnerTestEnv,
  workflowWith,
} from '../testing/fake-services.js';
import { clientFor, FAKE_ALLOWED_DOMAINS, ownerDb, type signedInUser } from '../testing/harness.js';
import {
  checkAddress,
  checkHostName,
  isHostAllowedByName,
  OutboundRefusedError,
  parseOutboundAllow,
} from './outbound-guard.js';
import type { Resolver } from './outbound-http.js';
import { sendOutbound } from './outbound-http.js';

const runnerSettingsOf = (env: NodeJS.ProcessEnv) => readConfig(env).runnerSettings;

const NOTHING_ALLOWED = parseOutboundAllow(undefined);

/** The hostname as the runner sees it: through the WHATWG URL parser (which normalises 127.1, 0x7f.0.0.1, …). */
const hostOf = (host: string) => new URL(`http://${host}/`).hostname;

const refused = (host: string, policy = NOTHING_ALLOWED) => {
  try {
    checkHostName(policy, hostOf(host));
    return false;
  } catch (error) {
    expect(error).toBeInstanceOf(OutboundRefusedError);
    return true;
  }
};

describe('outbound guard (unit)', () => {
  it.each([
    '127.0.0.1',
    '127.1',
    '2130706433',
    '0x7f.0.0.1',
    '0177.0.0.1',
    '127.255.255.254',
    '[::1]',
    '[::ffff:127.0.0.1]',
    '[::ffff:169.254.169.254]',
    '[0:0:0:0:0:ffff:7f00:1]',
    '169.254.169.254',
    '169.254.170.2',
    '100.100.100.200',
    '[fd00:ec2::254]',
    '[64:ff9b::7f00:1]',
    '[64:ff9b::a9fe:a9fe]',
    '[2002:7f00:1::]',
    '[2002:a9fe:a9fe::]',
    '[fe80::1]',
    '[::]',
    '[ff02::1]',
    '0.0.0.0',
    '0',
    '10.0.0.1',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '192.0.0.8',
    '198.18.0.1',
    '224.0.0.1',
    '240.0.0.1',
    '255.255.255.255',
    'localhost',
    'LOCALHOST',
    'localhost.',
    'a.localhost',
    'deep.a.localhost',
    'metadata.google.internal',
    'METADATA.GOOGLE.INTERNAL.',
  ])('refuses %s', (host) => {
    expect(refused(host)).toBe(true);
  });

  it.each([
    '93.184.216.34',
    '8.8.8.8',
    '100.63.255.255',
    '100.128.0.1',
    '172.32.0.1',
    '169.253.255.255',
    '[2606:4700:4700::1111]',
    '[64:ff9b::808:808]',
    '[2002:808:808::]',
    'example.com',
    'api.sendgrid.com',
    'localhost.example.com',
    'metadata.google.internal.example.com',
  ])('allows %s', (host) => {
    expect(refused(host)).toBe(false);
  });

  it('checks resolved addresses as a resolver returns them (zone ids, mapped, NAT64), each on its own', () => {
    for (const address of [
      '127.0.0.1',
      'fe80::1%eth0',
      '::ffff:10.0.0.1',
      '::ffff:7f00:1',
      '64:ff9b::a00:1',
      'fd12::1',
      '::1',
    ]) {
      expect(() => checkAddress(NOTHING_ALLOWED, address), address).toThrow(OutboundRefusedError);
    }
    for (const address of ['93.184.216.34', '2606:4700:4700::1111']) {
      expect(() => checkAddress(NOTHING_ALLOWED, address), address).not.toThrow();
    }
    expect(() => checkAddress(NOTHING_ALLOWED, 'not an address')).toThrow(OutboundRefusedError);
  });

  it('allows what LATCHKEY_OUTBOUND_ALLOW lists (hosts, addresses, CIDRs), and nothing next to it', () => {
    const policy = parseOutboundAllow(' 127.0.0.1, 10.0.0.0/8 ,Internal.Example.Test., fd00::/8,');
    for (const host of [
      '127.0.0.1',
      '127.1',
      '10.20.30.40',
      '[::ffff:10.1.2.3]',
      'internal.example.test',
      'INTERNAL.example.test.',
      '[fd00:ec2::254]',
    ]) {
      expect(refused(host, policy), host).toBe(false);
    }
    for (const host of ['127.0.0.2', '169.254.169.254', '192.168.0.1', 'localhost', '[::1]']) {
      expect(refused(host, policy), host).toBe(true);
    }
    expect(isHostAllowedByName(policy, 'internal.example.test')).toBe(true);
    // Only the exact name: a sibling or parent name is checked after resolution like any other.
    expect(isHostAllowedByName(policy, 'other.internal.example.test')).toBe(false);
    expect(isHostAllowedByName(policy, 'example.test')).toBe(false);
    // Resolved addresses: an allowed CIDR passes, the rest of the private ranges do not.
    expect(() => checkAddress(policy, '10.9.9.9')).not.toThrow();
    expect(() => checkAddress(policy, '172.16.0.1')).toThrow(OutboundRefusedError);
  });

  /**
   * The IANA IPv4 and IPv6 Special-Purpose Address Registries (iana.org/assignments/iana-ipv4-special-registry,
   * iana-ipv6-special-registry), entry by entry, plus the deprecated and multicast blocks outside them. `refused`
   * is the guard's answer: every entry not globally reachable; the IETF Protocol Assignments blocks as a whole
   * (their anycast entries included); the translation and 6to4 blocks are judged by their embedded IPv4 address,
   * which is refused at both ends of the block.
   */
  const SPECIAL_PURPOSE: Array<[cidr: string, name: string, rfc: string, answer: 'refused' | 'allowed']> = [
    ['0.0.0.0/8', '"This network"', 'RFC 791', 'refused'],
    ['0.0.0.0/32', '"This host on this network"', 'RFC 1122', 'refused'],
    ['10.0.0.0/8', 'Private-Use', 'RFC 1918', 'refused'],
    ['100.64.0.0/10', 'Shared Address Space', 'RFC 6598', 'refused'],
    ['127.0.0.0/8', 'Loopback', 'RFC 1122', 'refused'],
    ['169.254.0.0/16', 'Link Local', 'RFC 3927', 'refused'],
    ['172.16.0.0/12', 'Private-Use', 'RFC 1918', 'refused'],
    ['192.0.0.0/24', 'IETF Protocol Assignments', 'RFC 6890', 'refused'],
    ['192.0.0.0/29', 'IPv4 Service Continuity Prefix', 'RFC 7335', 'refused'],
    ['192.0.0.8/32', 'IPv4 dummy address', 'RFC 7600', 'refused'],
    ['192.0.0.9/32', 'Port Control Protocol Anycast', 'RFC 7723', 'refused'],
    ['192.0.0.10/32', 'Traversal Using Relays around NAT Anycast', 'RFC 8155', 'refused'],
    ['192.0.0.170/32', 'NAT64/DNS64 Discovery', 'RFC 8880', 'refused'],
    ['192.0.0.171/32', 'NAT64/DNS64 Discovery', 'RFC 8880', 'refused'],
    ['192.0.2.0/24', 'Documentation (TEST-NET-1)', 'RFC 5737', 'refused'],
    ['192.31.196.0/24', 'AS112-v4', 'RFC 7535', 'allowed'],
    ['192.52.193.0/24', 'AMT', 'RFC 7450', 'allowed'],
    ['192.88.99.0/24', 'Deprecated (6to4 Relay Anycast)', 'RFC 7526', 'refused'],
    ['192.88.99.2/32', '6a44-relay anycast address', 'RFC 6751', 'refused'],
    ['192.168.0.0/16', 'Private-Use', 'RFC 1918', 'refused'],
    ['192.175.48.0/24', 'Direct Delegation AS112 Service', 'RFC 7534', 'allowed'],
    ['198.18.0.0/15', 'Benchmarking', 'RFC 2544', 'refused'],
    ['198.51.100.0/24', 'Documentation (TEST-NET-2)', 'RFC 5737', 'refused'],
    ['203.0.113.0/24', 'Documentation (TEST-NET-3)', 'RFC 5737', 'refused'],
    ['224.0.0.0/4', 'Multicast (multicast registry)', 'RFC 5771', 'refused'],
    ['240.0.0.0/4', 'Reserved', 'RFC 1112', 'refused'],
    ['255.255.255.255/32', 'Limited Broadcast', 'RFC 919', 'refused'],
    ['::1/128', 'Loopback Address', 'RFC 4291', 'refused'],
    ['::/128', 'Unspecified Address', 'RFC 4291', 'refused'],
    ['::/96', 'IPv4-Compatible (deprecated, not in the registry)', 'RFC 4291', 'refused'],
    ['::ffff:0:0/96', 'IPv4-mapped Address', 'RFC 4291', 'refused'],
    ['64:ff9b::/96', 'IPv4-IPv6 Translat.', 'RFC 6052', 'refused'],
    ['64:ff9b:1::/48', 'IPv4-IPv6 Translat.', 'RFC 8215', 'refused'],
    ['100::/64', 'Discard-Only Address Block', 'RFC 6666', 'refused'],
    ['100:0:0:1::/64', 'Dummy IPv6 Prefix', 'RFC 9780', 'refused'],
    ['2001::/23', 'IETF Protocol Assignments', 'RFC 2928', 'refused'],
    ['2001::/32', 'TEREDO', 'RFC 4380', 'refused'],
    ['2001:1::1/128', 'Port Control Protocol Anycast', 'RFC 7723', 'refused'],
    ['2001:1::2/128', 'Traversal Using Relays around NAT Anycast', 'RFC 8155', 'refused'],
    ['2001:1::3/128', 'DNS-SD Service Registration Protocol Anycast', 'RFC 9665', 'refused'],
    ['2001:2::/48', 'Benchmarking', 'RFC 5180', 'refused'],
    ['2001:3::/32', 'AMT', 'RFC 7450', 'refused'],
    ['2001:4:112::/48', 'AS112-v6', 'RFC 7535', 'refused'],
    ['2001:10::/28', 'Deprecated (previously ORCHID)', 'RFC 4843', 'refused'],
    ['2001:20::/28', 'ORCHIDv2', 'RFC 7343', 'refused'],
    ['2001:30::/28', 'Drone Remote ID Protocol Entity Tags (DETs) Prefix', 'RFC 9374', 'refused'],
    ['2001:db8::/32', 'Documentation', 'RFC 3849', 'refused'],
    ['2002::/16', '6to4', 'RFC 3056', 'refused'],
    ['2620:4f:8000::/48', 'Direct Delegation AS112 Service', 'RFC 7534', 'allowed'],
    ['3fff::/20', 'Documentation', 'RFC 9637', 'refused'],
    ['5f00::/16', 'Segment Routing (SRv6) SIDs', 'RFC 9602', 'refused'],
    ['fc00::/7', 'Unique-Local', 'RFC 4193', 'refused'],
    ['fe80::/10', 'Link-Local Unicast', 'RFC 4291', 'refused'],
    ['fec0::/10', 'Site-Local (deprecated, not in the registry)', 'RFC 3879', 'refused'],
    ['ff00::/8', 'Multicast', 'RFC 4291', 'refused'],
  ];

  it.each(SPECIAL_PURPOSE)(
    'answers %s (%s, %s): %s at its first and last address',
    (cidr, _name, _rfc, answer) => {
      const family = cidr.includes(':') ? ipaddr.IPv6 : ipaddr.IPv4;
      const ends = [family.networkAddressFromCIDR(cidr), family.broadcastAddressFromCIDR(cidr)];
      for (const address of ends.map((end) => end.toString())) {
        const host = address.includes(':') ? `[${address}]` : address;
        expect(refused(host), address).toBe(answer === 'refused');
        let resolvedRefused = false;
        try {
          checkAddress(NOTHING_ALLOWED, address);
        } catch (error) {
          expect(error).toBeInstanceOf(OutboundRefusedError);
          resolvedRefused = true;
        }
        expect(resolvedRefused, address).toBe(answer === 'refused');
      }
    },
  );

  it.each([
    '1.1.1.1',
    '8.8.4.4',
    '93.184.216.34',
    '192.0.1.255',
    '192.0.3.0',
    '203.0.114.1',
    '2606:4700:4700::1111',
    '2a00:1450:4001:80b::200e',
    '2001:200::1',
    '64:ff9b::101:101',
    '2002:808:808::1',
  ])('allows the global address %s', (address) => {
    expect(() => checkAddress(NOTHING_ALLOWED, address)).not.toThrow();
  });

  it('refuses a malformed allow-list entry at start-up, naming it', () => {
    expect(() => parseOutboundAllow('http://intranet/')).toThrow(/"http:\/\/intranet\/" is not a host name/);
    expect(() => parseOutboundAllow('10.0.0.0/33')).toThrow(/10\.0\.0\.0\/33/);
  });

  it('reads the allow-list and base URL overrides from the environment', () => {
    const settings = runnerSettingsOf({
      LATCHKEY_OUTBOUND_ALLOW: '192.168.0.0/16',
      LATCHKEY_BASE_URL_SENDGRID: 'http://sendgrid.gateway.test/',
      LATCHKEY_BASE_URL_MAILGUN_EU: 'http://eu.gateway.test',
      LATCHKEY_OUTBOUND_TIMEOUT_MS: '1234',
    });
    expect(settings.baseUrlOverrides).toEqual({
      LATCHKEY_BASE_URL_SENDGRID: 'http://sendgrid.gateway.test',
      LATCHKEY_BASE_URL_MAILGUN_EU: 'http://eu.gateway.test',
    });
    expect(settings.timeoutMs).toBe(1234);
    expect(refused('192.168.5.5', settings.policy)).toBe(false);
    expect(refused('10.0.0.1', settings.policy)).toBe(true);
    expect(() => runnerSettingsOf({ LATCHKEY_OUTBOUND_TIMEOUT_MS: 'soon' })).toThrow(
      /LATCHKEY_OUTBOUND_TIMEOUT_MS/,
    );
    for (const bad of ['sendgrid.gateway.test', 'ftp://gateway.test/']) {
      expect(() => runnerSettingsOf({ LATCHKEY_BASE_URL_SENDGRID: bad })).toThrow(
        'LATCHKEY_BASE_URL_SENDGRID must be an http:// or https:// URL',
      );
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// End to end: HTTP Request nodes run through workflows.run against the fakes.

let env: RunnerTestEnv;
let person: Awaited<ReturnType<typeof signedInUser>>;
let workspaceId: string;
/** The person's shared helpers (testing/fake-services.ts). */
let you: RunnerTestPerson;
/** Services that refuse every private address (nothing allowed), resolving names through `dns`. */
let strict: Services;
const dns = new Map<string, string[]>();
const resolver: Resolver = async (hostname) => {
  const addresses = dns.get(hostname.toLowerCase());
  if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
  return addresses.map((address): LookupAddress => ({ address, family: address.includes(':') ? 6 : 4 }));
};

beforeAll(async () => {
  env = await startRunnerTestEnv({ resolver });
  strict = await env.servicesWith({ policy: NOTHING_ALLOWED });
  you = await runnerTestPerson(env, 'Guard Tester');
  ({ person, workspaceId } = you);
});
afterAll(() => env.close());
beforeEach(() => {
  env.fakes.resetAll();
  dns.clear();
});

const callerOn = (svc: Services) => you.callerOn(svc);

/** A bearer token allowed to every host these tests aim at, so what refuses them is the guard. */
async function bearer() {
  const data = {
    ...(freshFakeData().httpBearerToken as { token: string }),
    allowedDomains: '127.0.0.1, localhost, example.test',
  };
  const s = await person.caller.secrets.create({
    workspaceId,
    credentialType: 'httpBearerToken',
    name: `Token ${Math.random()}`,
    data,
  });
  return { id: s.id, token: data.token };
}

async function runHttp(
  url: string,
  secretId: string,
  svc: Services = env.svc,
  extra: Record<string, unknown> = {},
) {
  const { workflowId } = await workflowWith(person.caller, workspaceId, `Guarded ${url}`, [
    { name: 'Call API', nodeType: 'httpRequest', params: PARAMS.http(url, extra), secretId },
  ]);
  const result = await callerOn(svc).workflows.run({ workflowId });
  return result.nodes[0];
}

const REFUSED_PRIVATE = (address: string) =>
  `Node 'Call API': The request was refused: requests to private, loopback or metadata addresses (${address}) are not allowed.`;

// A credential goes over plain http:// only to hosts LATCHKEY_OUTBOUND_ALLOW lists (claim 32), which `strict`
// lists none of: the guard's own refusals are shown over https://, where it refuses before any connection.
describe('outbound guard (end to end, HTTP Request node)', () => {
  it('refuses 127.0.0.1 by default, however it is written, and nothing reaches the fake', async () => {
    const { id } = await bearer();
    const port = env.fakes.http.port;
    // (An IPv6 literal cannot be an allowed domain, so IPv4-mapped loopback is checked below through DNS.)
    for (const host of ['127.0.0.1', '127.1', '2130706433', '0x7f.0.0.1']) {
      const node = await runHttp(`https://${host}:${port}/x`, id, strict);
      expect(node?.error, host).toBe(REFUSED_PRIVATE('127.0.0.1'));
    }
    expect((await runHttp(`https://localhost:${port}/x`, id, strict))?.error).toBe(
      "Node 'Call API': The request was refused: requests to localhost are not allowed.",
    );
    expect(env.fakes.http.requests).toEqual([]);
  });

  it('refuses a DNS name that resolves to 127.0.0.1 (checked after resolution), with no request reaching the fake', async () => {
    const { id } = await bearer();
    dns.set('rebind.example.test', ['127.0.0.1']);
    const url = `https://rebind.example.test:${env.fakes.http.port}/internal`;
    expect((await runHttp(url, id, strict))?.error).toBe(REFUSED_PRIVATE('127.0.0.1'));
    expect(env.fakes.http.requests).toEqual([]);

    // Control: the same name, with 127.0.0.1 allowed, passes the guard through the injected resolver and
    // connects (so the refusal above is the guard's doing, not a failed lookup): the plain-http fake cannot
    // speak TLS, which is the failure left.
    const node = await runHttp(url, id, env.svc);
    expect(node?.ok).toBe(false);
    expect(node?.error).toMatch(
      /^Node 'Call API': rebind\.example\.test:\d+ (could not be reached|closed the connection)/,
    );
  });

  it('refuses a name when ANY of its addresses is private (public + loopback, or IPv4-mapped loopback)', async () => {
    const { id } = await bearer();
    dns.set('mixed.example.test', ['93.184.216.34', '127.0.0.1']);
    dns.set('mapped.example.test', ['::ffff:127.0.0.1']);
    expect((await runHttp(`https://mixed.example.test:${env.fakes.http.port}/`, id, strict))?.error).toBe(
      REFUSED_PRIVATE('127.0.0.1'),
    );
    expect((await runHttp(`https://mapped.example.test:${env.fakes.http.port}/`, id, strict))?.error).toBe(
      REFUSED_PRIVATE('127.0.0.1'),
    );
    expect(env.fakes.http.requests).toEqual([]);
  });

  it('a name that does not resolve fails with a sentence naming the node, not the credential; the code apart', async () => {
    const { id, token } = await bearer();
    const node = await runHttp('https://nowhere.example.test/', id, strict);
    expect(node).toMatchObject({
      ok: false,
      error: "Node 'Call API': nowhere.example.test could not be reached.",
      // For the node's own card (which shows its name), and the system's code for a details disclosure.
      reason: 'nowhere.example.test could not be reached.',
      code: 'ENOTFOUND',
    });
    expect(JSON.stringify(node)).not.toContain(token);
  });

  it('refuses a redirect to 169.254.169.254 (the first hop was allowed, the metadata hop is not)', async () => {
    const { id } = await bearer();
    env.fakes.http.respond({ kind: 'redirect', location: 'http://169.254.169.254/latest/meta-data' });
    const node = await runHttp(`${env.fakes.http.url}/start`, id);
    expect(node?.error).toBe(REFUSED_PRIVATE('169.254.169.254'));
    expect(env.fakes.http.requests).toHaveLength(1);
  });

  it('refuses a redirect from an integration’s own base URL (SendGrid) to the metadata address', async () => {
    env.fakes.sendgrid.respond({ kind: 'redirect', location: 'http://169.254.169.254/latest/meta-data/iam' });
    const data = freshFakeData().sendgridApiKey as Record<string, string>;
    const s = await person.caller.secrets.create({
      workspaceId,
      credentialType: 'sendgridApiKey',
      name: `SG ${Math.random()}`,
      data,
    });
    const { workflowId } = await workflowWith(person.caller, workspaceId, 'SG redirect', [
      { name: 'Send welcome email', nodeType: 'sendgrid', params: PARAMS.sendgrid, secretId: s.id },
    ]);
    const result = await person.caller.workflows.run({ workflowId });
    expect(result.nodes[0]?.error).toBe(
      "Node 'Send welcome email': The request was refused: requests to private, loopback or metadata addresses (169.254.169.254) are not allowed.",
    );
  });

  it('refuses a redirect to a name that resolves to a private address, and to a non-http scheme', async () => {
    const { id } = await bearer();
    dns.set('sneaky.example.test', ['10.0.0.7']);
    env.fakes.http.respond({ kind: 'redirect', location: 'http://sneaky.example.test/' });
    expect((await runHttp(`${env.fakes.http.url}/a`, id))?.error).toBe(REFUSED_PRIVATE('10.0.0.7'));
    env.fakes.http.respond({ kind: 'redirect', location: 'file:///etc/passwd' });
    expect((await runHttp(`${env.fakes.http.url}/b`, id))?.error).toBe(
      "Node 'Call API': redirects may only go to http or https URLs.",
    );
  });

  it('a redirect to another origin arrives WITHOUT the credential (Authorization, custom header); the node still succeeds', async () => {
    const { id } = await bearer();
    env.fakes.http.respond({ kind: 'redirect', location: `${env.fakes.otherHttp.url}/landing` });
    const node = await runHttp(`${env.fakes.http.url}/start`, id);
    expect(node?.ok).toBe(true);
    expect(env.fakes.http.only().headers.authorization).toMatch(/^Bearer fake-bearer-/);
    const landed = env.fakes.otherHttp.only();
    expect(landed.path).toBe('/landing');
    expect(landed.headers.authorization).toBeUndefined();

    env.fakes.resetAll();
    env.fakes.http.respond({ kind: 'redirect', location: `${env.fakes.otherHttp.url}/landing` });
    const header = {
      headerName: 'X-Fake-Api-Key',
      headerValue: `fake-header-${Math.random().toString(36).slice(2)}`,
      allowedDomains: FAKE_ALLOWED_DOMAINS,
    };
    const hs = await person.caller.secrets.create({
      workspaceId,
      credentialType: 'httpHeaderAuth',
      name: `Hdr ${Math.random()}`,
      data: header,
    });
    await runHttp(`${env.fakes.http.url}/start`, hs.id);
    expect(env.fakes.http.only().headers['x-fake-api-key']).toBe(header.headerValue);
    expect(env.fakes.otherHttp.only().headers['x-fake-api-key']).toBeUndefined();
  });

  it('an integration’s cross-origin redirect (SendGrid → elsewhere) also drops the Authorization header', async () => {
    env.fakes.sendgrid.respond({
      kind: 'redirect',
      location: `${env.fakes.otherHttp.url}/v3/mail/send`,
      status: 307,
    });
    const data = freshFakeData().sendgridApiKey as Record<string, string>;
    const s = await person.caller.secrets.create({
      workspaceId,
      credentialType: 'sendgridApiKey',
      name: `SG ${Math.random()}`,
      data,
    });
    const { workflowId } = await workflowWith(person.caller, workspaceId, 'SG elsewhere', [
      { name: 'Send', nodeType: 'sendgrid', params: PARAMS.sendgrid, secretId: s.id },
    ]);
    await person.caller.workflows.run({ workflowId });
    const landed = env.fakes.otherHttp.only();
    expect(landed.method).toBe('POST');
    expect(landed.headers.authorization).toBeUndefined();
    expect(JSON.parse(landed.body)).toMatchObject({ subject: 'Welcome' });
  });

  it('a same-origin redirect keeps the credential (302 turns POST into GET; 307 keeps method and body)', async () => {
    const { id, token } = await bearer();
    env.fakes.http.respond({ kind: 'redirect', location: '/landing', fromPath: '/start' });
    const node = await runHttp(`${env.fakes.http.url}/start`, id, env.svc, {
      method: 'POST',
      body: 'payload',
    });
    expect(node?.ok).toBe(true);
    expect(env.fakes.http.requests.map((r) => [r.method, r.path, r.headers.authorization, r.body])).toEqual([
      ['POST', '/start', `Bearer ${token}`, 'payload'],
      ['GET', '/landing', `Bearer ${token}`, ''],
    ]);

    env.fakes.resetAll();
    env.fakes.http.respond({ kind: 'redirect', location: '/landing', fromPath: '/start', status: 307 });
    await runHttp(`${env.fakes.http.url}/start`, id, env.svc, { method: 'PUT', body: 'again' });
    expect(env.fakes.http.requests.map((r) => [r.method, r.path, r.headers.authorization, r.body])).toEqual([
      ['PUT', '/start', `Bearer ${token}`, 'again'],
      ['PUT', '/landing', `Bearer ${token}`, 'again'],
    ]);
  });

  const connectionHeaders = [
    'Host: metadata.google.internal',
    'Transfer-Encoding: chunked',
    'Connection: upgrade',
    'Upgrade: websocket',
    'Proxy-Authorization: Basic Zm9vOmJhcg==',
    'X-Kept: yes',
  ].join('\n');

  it('refuses connection and proxy headers when a node is configured, naming the field', async () => {
    await expect(
      runHttp(`${env.fakes.http.url}/headers`, 'unused', env.svc, { headers: connectionHeaders }),
    ).rejects.toMatchObject({ code: 'BAD_REQUEST', cause: { issues: [{ path: ['params', 'headers'] }] } });
  });

  it('drops connection and proxy headers at the wire even if a request carries them, keeps the rest', async () => {
    // Node parameters refuse these headers (above); the outbound client drops them as a second wall.
    const response = await sendOutbound(
      {
        method: 'POST',
        url: `${env.fakes.http.url}/headers`,
        headers: Object.fromEntries(
          connectionHeaders.split('\n').map((line) => line.split(': ') as [string, string]),
        ),
        body: 'abc',
      },
      (request) => ({ ...request, headers: { ...request.headers, Authorization: 'Bearer wire-test-token' } }),
      { ...env.svc.runnerSettings, guard: () => false },
    );
    expect(response.status).toBe(200);
    const req = env.fakes.http.only();
    expect(req.headers.host).toBe(`127.0.0.1:${env.fakes.http.port}`);
    expect(req.headers['transfer-encoding']).toBeUndefined();
    expect(req.headers.upgrade).toBeUndefined();
    expect(req.headers['proxy-authorization']).toBeUndefined();
    expect(req.headers['content-length']).toBe('3');
    expect(req.headers['x-kept']).toBe('yes');
    expect(req.headers.authorization).toBe('Bearer wire-test-token');
    expect(req.body).toBe('abc');
  });

  it('fails a node whose stored headers are refused, before anything is sent', async () => {
    const { id } = await bearer();
    const { workflowId, nodes } = await workflowWith(person.caller, workspaceId, 'Stored headers', [
      {
        name: 'Call API',
        nodeType: 'httpRequest',
        params: PARAMS.http(`${env.fakes.http.url}/headers`),
        secretId: id,
      },
    ]);
    // A node saved before headers were checked: written straight to the database.
    await ownerDb(env.svc)
      .updateTable('workflow_nodes')
      .set({
        params: JSON.stringify({
          ...PARAMS.http(`${env.fakes.http.url}/headers`),
          headers: connectionHeaders,
        }),
      })
      .where('id', '=', nodes[0]?.id ?? '')
      .execute();
    const node = (await callerOn(env.svc).workflows.run({ workflowId })).nodes[0];
    expect(node?.ok).toBe(false);
    expect(node?.error).toMatch(/^Node 'Call API' is not fully configured \(headers: /);
    expect(env.fakes.http.requests).toEqual([]);
  });

  it('stops after the configured number of redirects', async () => {
    const { id } = await bearer();
    env.fakes.http.respond({ kind: 'redirect', location: '/loop' });
    const node = await runHttp(`${env.fakes.http.url}/loop`, id);
    expect(node?.error).toBe(
      `Node 'Call API': 127.0.0.1:${env.fakes.http.port} redirected more than 5 times.`,
    );
    expect(env.fakes.http.requests).toHaveLength(6);
  });

  it('fails a response over the size cap, on the HTTP Request node and on an integration alike', async () => {
    const { id } = await bearer();
    env.fakes.http.respond({ kind: 'oversized', bytes: 2 * 1024 * 1024 });
    const node = await runHttp(`${env.fakes.http.url}/big`, id);
    expect(node?.error).toBe(
      `Node 'Call API': 127.0.0.1:${env.fakes.http.port} answered with more than ${256 * 1024} bytes.`,
    );

    env.fakes.sendgrid.respond({ kind: 'oversized', bytes: 2 * 1024 * 1024 });
    const outcome = await person.caller.secrets.test({
      workspaceId,
      credentialType: 'sendgridApiKey',
      data: freshFakeData().sendgridApiKey,
    });
    expect(outcome).toEqual({
      ok: false,
      message: `127.0.0.1:${env.fakes.sendgrid.port} answered with more than ${256 * 1024} bytes.`,
    });

    // Just under the cap is fine.
    env.fakes.http.respond({ kind: 'oversized', bytes: 256 * 1024 });
    expect((await runHttp(`${env.fakes.http.url}/fits`, id))?.ok).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Where a credential may go (claims 29 and 32): the HTTP Request credential's allowed domains, and plain http://.

describe('a credential with allowed domains', () => {
  it('is applied on its domains and refused anywhere else, before anything is sent', async () => {
    const svc = await env.servicesWith({ resolver });
    const client = clientFor(svc);
    client.session.token = person.session.token;
    const token = `fake-scoped-${Math.random().toString(36).slice(2)}`;
    const s = await client.caller.secrets.create({
      workspaceId,
      credentialType: 'httpBearerToken',
      name: 'Scoped',
      data: { token, allowedDomains: '127.0.0.1' },
    });
    const port = env.fakes.http.port;
    const run = async (host: string) => {
      const { workflowId } = await workflowWith(client.caller, workspaceId, `Scoped ${host}`, [
        {
          name: 'Scoped call',
          nodeType: 'httpRequest',
          params: PARAMS.http(`http://127.0.0.1:${port}/x`),
          secretId: s.id,
        },
      ]);
      // Saved while the URL was allowed; pointed elsewhere directly in the database, as a node saved before
      // the list existed would be: the runner still refuses (the editor's check is not the only one).
      await ownerDb(svc)
        .updateTable('workflow_nodes')
        .set({ params: JSON.stringify(PARAMS.http(`http://${host}:${port}/x`)) })
        .where('workflow_id', '=', workflowId)
        .execute();
      return (await client.caller.workflows.run({ workflowId })).nodes[0];
    };

    expect((await run('127.0.0.1'))?.ok).toBe(true);
    expect(env.fakes.http.requests.map((r) => r.headers.authorization)).toEqual([`Bearer ${token}`]);
    env.fakes.resetAll();

    for (const host of ['evil.example.test', '127.0.0.1.evil.example.test', 'localhost']) {
      dns.set(host, ['127.0.0.1']);
      const node = await run(host);
      expect(node?.error, host).toBe(
        "Node 'Scoped call': The credential 'Scoped' may only be sent to 127.0.0.1.",
      );
    }
    expect(env.fakes.http.requests).toEqual([]);
  });

  it('goes over plain http:// only to a host LATCHKEY_OUTBOUND_ALLOW lists, for every credential type', async () => {
    const { id } = await bearer();
    dns.set('api.example.test', ['127.0.0.1']);
    // api.example.test is an allowed domain of the credential, resolves to an allowed address, but is not
    // itself listed in LATCHKEY_OUTBOUND_ALLOW: no token over plain http.
    const node = await runHttp(`http://api.example.test:${env.fakes.http.port}/x`, id);
    expect(node?.error).toMatch(
      new RegExp(
        `^Node 'Call API': The request was refused: The credential 'Token [0-9.]+' is never sent over plain http:// \\(api\\.example\\.test:${env.fakes.http.port} is not in LATCHKEY_OUTBOUND_ALLOW\\): use https://\\.$`,
      ),
    );
    // An integration's own base URL is no exception: SendGrid pointed at a plain-http fake the allow-list lacks.
    const unlisted = await env.servicesWith({ policy: parseOutboundAllow('') });
    const sendgrid = await person.caller.secrets.create({
      workspaceId,
      credentialType: 'sendgridApiKey',
      name: `SG ${Math.random()}`,
      data: freshFakeData().sendgridApiKey as Record<string, string>,
    });
    const { workflowId } = await workflowWith(person.caller, workspaceId, 'Plain http SendGrid', [
      { name: 'Mail', nodeType: 'sendgrid', params: PARAMS.sendgrid, secretId: sendgrid.id },
    ]);
    const mail = (await callerOn(unlisted).workflows.run({ workflowId })).nodes[0];
    expect(mail?.error).toMatch(
      /^Node 'Mail': The request was refused: The credential '.*' is never sent over plain http:\/\//,
    );
    expect(env.fakes.http.requests).toEqual([]);
    expect(env.fakes.sendgrid.requests).toEqual([]);
  });
});
