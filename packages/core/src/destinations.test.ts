import { describe, expect, it } from 'vitest';
import {
  credentialDestinations,
  credentialSubject,
  destinationRefusal,
  isHostAllowed,
} from './destinations.js';

describe('where a credential may be sent', () => {
  it.each([
    ['api.example.test', ['api.example.test'], true],
    ['API.Example.Test.', ['api.example.test'], true],
    ['eu.api.example.test', ['api.example.test'], true],
    ['eu.api.example.test', ['*.api.example.test'], true],
    ['api.example.test.evil.test', ['api.example.test'], false],
    ['evilapi.example.test', ['api.example.test'], false],
    ['example.test', ['api.example.test'], false],
    ['[::1]', ['api.example.test'], false],
    ['127.0.0.1', ['127.0.0.1'], true],
    ['anything.test', [], false],
    ['anything.test', [''], false],
  ] as const)('%s with %j: %s', (host, allowed, expected) => {
    expect(isHostAllowed(host, allowed)).toBe(expected);
  });

  it('is unrestricted only for a type that declares no allowedHosts; an empty list means nowhere', () => {
    expect(credentialDestinations({}, { allowedDomains: 'x.test' })).toBeNull();
    const restricted = { allowedHosts: (p: Record<string, string>) => (p.list ? p.list.split(',') : []) };
    expect(credentialDestinations(restricted, { list: 'a.test,b.test' })).toEqual(['a.test', 'b.test']);
    expect(credentialDestinations(restricted, {})).toEqual([]);
  });

  it('says why a credential is refused, naming it, and who can fix a missing list', () => {
    const subject = credentialSubject('Billing API');
    expect(destinationRefusal(subject, null, 'anywhere.test')).toBeUndefined();
    expect(destinationRefusal(subject, ['billing.example.test'], 'api.billing.example.test')).toBeUndefined();
    expect(destinationRefusal(subject, ['billing.example.test'], 'collector.evil.test')).toBe(
      "The credential 'Billing API' may only be sent to billing.example.test.",
    );
    expect(destinationRefusal(credentialSubject(), [], 'billing.example.test')).toBe(
      'This credential needs allowed domains before it can be used: its creator, an owner or an admin can add them.',
    );
  });
});
