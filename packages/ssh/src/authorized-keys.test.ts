import { describe, expect, it } from 'vitest';
import { keyAllowsAddress, keyAllowsForward, parseAuthorizedKeys } from './authorized-keys.js';
import { generateSshKey } from './keygen.js';

const pub = generateSshKey('user@laptop').publicKey;

describe('authorized_keys', () => {
  it('reads plain keys with comments', () => {
    const { keys, errors } = parseAuthorizedKeys(`# keys\n${pub}\n\n`);
    expect(errors).toEqual([]);
    expect(keys[0]).toMatchObject({ keyType: 'ssh-ed25519', comment: 'user@laptop', portForwarding: true });
  });

  it('from="…" with CIDR, wildcards and negation', () => {
    const { keys } = parseAuthorizedKeys(`from="10.0.0.0/8,192.168.1.*,!10.6.6.6" ${pub}`);
    const key = keys[0]!;
    expect(keyAllowsAddress(key, '10.1.2.3')).toBe(true);
    expect(keyAllowsAddress(key, '192.168.1.77')).toBe(true);
    expect(keyAllowsAddress(key, '10.6.6.6')).toBe(false);
    expect(keyAllowsAddress(key, '127.0.0.1')).toBe(false);
    const v6 = parseAuthorizedKeys(`from="2001:db8::/32" ${pub}`).keys[0]!;
    expect(keyAllowsAddress(v6, '2001:db8::1')).toBe(true);
    expect(keyAllowsAddress(v6, '10.0.0.1')).toBe(false);
  });

  it('restrict turns forwarding off; port-forwarding and permitopen narrow it back', () => {
    const [restricted, reopened, plain] = parseAuthorizedKeys(
      `restrict ${pub}\nrestrict,port-forwarding,permitopen="db:5432",permitopen="[::1]:*" ${pub}\nno-port-forwarding,no-pty ${pub}`,
    ).keys;
    expect(keyAllowsForward(restricted!, 'db', 5432)).toBe(false);
    expect(keyAllowsForward(reopened!, 'db', 5432)).toBe(true);
    expect(keyAllowsForward(reopened!, 'db', 22)).toBe(false);
    expect(keyAllowsForward(reopened!, '::1', 9)).toBe(true);
    expect(keyAllowsForward(plain!, 'db', 5432)).toBe(false);
  });

  it('refuses (fails closed on) options it cannot honour and malformed lines', () => {
    const { keys, errors } = parseAuthorizedKeys(
      [
        `command="/bin/true" ${pub}`,
        `from="10.0.0.0/33" ${pub}`,
        `from="unterminated ${pub}`,
        `tunnel="1" ${pub}`,
        `ssh-ed25519 !!!notbase64`,
        `ssh-rsa ${pub.split(' ')[1]}`,
        `from=10.0.0.1 ${pub}`,
      ].join('\n'),
    );
    expect(keys).toEqual([]);
    expect(errors.map((e) => e.line)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(errors[0]!.message).toContain('command');
  });

  it('keeps quoted commas and escaped quotes inside option values', () => {
    const { keys } = parseAuthorizedKeys(`from="10.0.0.1,10.0.0.2",no-pty ${pub} a comment`);
    expect(keys[0]!.from).toBe('10.0.0.1,10.0.0.2');
    expect(keys[0]!.comment).toBe('user@laptop a comment');
  });
});
