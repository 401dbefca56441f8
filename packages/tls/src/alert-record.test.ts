import { describe, expect, it } from 'vitest';
import {
  AlertDescription,
  hkdfExpandLabel,
  opensUnder,
  sealAlert,
  tls12Prf,
  tls12ServerKey,
  tls13Key,
} from './alert-record.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// RFC 8448 §3 (Simple 1-RTT Handshake), TLS_AES_128_GCM_SHA256.
const SERVER_AP_SECRET = hex(
  'a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32 82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43',
);
/** {server} NewSessionTicket, the first record under the server application key (sequence 0). */
const NEW_SESSION_TICKET = hex(`17 03 03 00 de 3a 6b 8f 90 41 4a 97 d6 95 9c 34 87 68 0d e5 13 4a 2b 24
  0e 6c ff ac 11 6e 95 d4 1d 6a f8 f6 b5 80 dc f3 d1 1d 63 c7 58 db 28 9a 01 59 40 25 2f 55 71 3e 06 1d
  c1 3e 07 88 91 a3 8e fb cf 57 53 ad 8e f1 70 ad 3c 73 53 d1 6d 9d a7 73 b9 ca 7f 2b 9f a1 b6 c0 d4 a3
  d0 3f 75 e0 9c 30 ba 1e 62 97 2a c4 6f 75 f7 b9 81 be 63 43 9b 29 99 ce 13 06 46 15 13 98 91 d5 e4 c5
  b4 06 f1 6e 3f c1 81 a7 7c a4 75 84 00 25 db 2f 0a 77 f8 1b 5a b0 5b 94 c0 13 46 75 5f 69 23 2c 86 51
  9d 86 cb ee ac 87 aa c3 47 d1 43 f9 60 5d 64 f6 50 db 4d 02 3e 70 e9 52 ca 49 fe 51 37 12 1c 74 bc 26
  97 68 7e 24 87 46 d6 df 35 30 05 f3 bc e1 86 96 12 9c 81 53 55 6b 3b 6c 67 79 b3 7b f1 59 85 68 4f`);
/** {server} application data, sequence 1. */
const SERVER_APP_DATA = hex(`17 03 03 00 43 2e 93 7e 11 ef 4a c7 40 e5 38 ad 36 00 5f c4 a4 69 32 fc
  32 25 d0 5f 82 aa 1b 36 e3 0e fa f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8 fc c4 9c 4b f2 e5 f0 a2 1c 00
  47 c2 ab f3 32 54 0d d0 32 e1 67 c2 95 5d`);
/** {client} application data: under the client's key, so never under the server's. */
const CLIENT_APP_DATA = hex(`17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82 28 ba 55 cb ef ac ea
  42 f9 14 aa 66 bc ab 3f 2b 98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b 62 97 4e 1f 5a 62 92 a2 97 70
  14 bd 1e 3d ea e6 3a ee bb 21 69 49 15 e4`);
/** {server} close_notify, sequence 2. */
const SERVER_CLOSE_NOTIFY = hex('17 03 03 00 13 b5 8f d6 71 66 eb f5 99 d2 47 20 cf be 7e fa 7a 88 64 a9');

describe('TLS 1.3 record protection (RFC 8448 §3 known answers)', () => {
  it('derives the server application key and IV with HKDF-Expand-Label', () => {
    expect(hkdfExpandLabel('sha256', SERVER_AP_SECRET, 'key', Buffer.alloc(0), 16)).toEqual(
      hex('9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac 92 e3 56'),
    );
    const k = tls13Key('TLS_AES_128_GCM_SHA256', SERVER_AP_SECRET);
    expect(k?.iv).toEqual(hex('cf 78 2b 88 dd 83 54 9a ad f1 e9 84'));
  });

  it('seals an alert exactly as the trace does (close_notify at sequence 2)', () => {
    const k = tls13Key('TLS_AES_128_GCM_SHA256', SERVER_AP_SECRET)!;
    expect(sealAlert(k, 2n, 0, 1)).toEqual(SERVER_CLOSE_NOTIFY);
    // The fatal alerts the server sends differ from it only in their two plaintext bytes.
    const fatal = sealAlert(k, 2n, AlertDescription.UNKNOWN_CA);
    expect(fatal.subarray(0, 5)).toEqual(SERVER_CLOSE_NOTIFY.subarray(0, 5));
    expect(fatal).not.toEqual(SERVER_CLOSE_NOTIFY);
    expect(opensUnder(k, 2n, fatal)).toBe(true);
  });

  it('opens a record only under its key and its sequence number', () => {
    const k = tls13Key('TLS_AES_128_GCM_SHA256', SERVER_AP_SECRET)!;
    expect(opensUnder(k, 0n, NEW_SESSION_TICKET)).toBe(true);
    expect(opensUnder(k, 1n, NEW_SESSION_TICKET)).toBe(false);
    expect(opensUnder(k, 1n, SERVER_APP_DATA)).toBe(true);
    expect(opensUnder(k, 0n, SERVER_APP_DATA)).toBe(false);
    expect(opensUnder(k, 0n, CLIENT_APP_DATA)).toBe(false);
    const tampered = Buffer.from(NEW_SESSION_TICKET);
    tampered[40] = (tampered[40] as number) ^ 1;
    expect(opensUnder(k, 0n, tampered)).toBe(false);
    expect(opensUnder(k, 0n, NEW_SESSION_TICKET.subarray(0, 10))).toBe(false);
  });

  it('knows the three TLS 1.3 suites and nothing else', () => {
    for (const suite of [
      'TLS_AES_128_GCM_SHA256',
      'TLS_AES_256_GCM_SHA384',
      'TLS_CHACHA20_POLY1305_SHA256',
    ]) {
      const k = tls13Key(suite, Buffer.alloc(48, 7));
      expect(k, suite).toBeDefined();
      const record = sealAlert(k!, 5n, AlertDescription.ACCESS_DENIED);
      // header + alert (2) + inner content type (1) + tag (16)
      expect(record.length).toBe(5 + 3 + 16);
      expect(opensUnder(k!, 5n, record)).toBe(true);
      expect(opensUnder(k!, 4n, record)).toBe(false);
    }
    expect(tls13Key('TLS_AES_128_CCM_SHA256', Buffer.alloc(32))).toBeUndefined();
    expect(tls13Key('ECDHE-RSA-AES128-GCM-SHA256', Buffer.alloc(32))).toBeUndefined();
  });
});

describe('TLS 1.2 record protection', () => {
  it('computes the PRF (the TLS working group P_SHA256 known answer)', () => {
    const out = tls12Prf(
      'sha256',
      hex('9b be 43 6b a9 40 f0 17 b1 76 52 84 9a 71 db 35'),
      'test label',
      hex('a0 ba 9f 93 6c da 31 18 27 a6 f7 96 ff d5 19 8c'),
      100,
    );
    expect(out).toEqual(
      hex(`e3 f2 29 ba 72 7b e1 7b 8d 12 26 20 55 7c d4 53 c2 aa b2 1d 07 c3 d4 95 32 9b 52 d4 e6 1e db 5a
        6b 30 17 91 e9 0d 35 c9 c9 a4 6b 4e 14 ba f9 af 0f a0 22 f7 07 7d ef 17 ab fd 37 97 c0 56 4b ab
        4f bc 91 66 6e 9d ef 9b 97 fc e3 4f 79 67 89 ba a4 80 82 d1 22 ee 42 c5 a7 2e 5a 51 10 ff f7 01
        87 34 7b 66`),
    );
  });

  it('lays out GCM records with an explicit nonce and ChaCha20 records without one', () => {
    const master = Buffer.alloc(48, 1);
    const randoms = [Buffer.alloc(32, 2), Buffer.alloc(32, 3)] as const;
    const gcm = tls12ServerKey('ECDHE-ECDSA-AES128-GCM-SHA256', master, ...randoms)!;
    expect(gcm.iv.length).toBe(4);
    const g = sealAlert(gcm, 1n, AlertDescription.CERTIFICATE_EXPIRED);
    // type alert, TLS 1.2, explicit nonce (the sequence number) + 2 bytes + tag
    expect([...g.subarray(0, 5)]).toEqual([21, 3, 3, 0, 8 + 2 + 16]);
    expect(g.readBigUInt64BE(5)).toBe(1n);
    const chacha = tls12ServerKey('ECDHE-RSA-CHACHA20-POLY1305', master, ...randoms)!;
    expect(chacha.iv.length).toBe(12);
    expect([...sealAlert(chacha, 1n, 45).subarray(0, 5)]).toEqual([21, 3, 3, 0, 2 + 16]);
    // The server key is the second half of the key block: not the client's.
    expect(tls12ServerKey('ECDHE-RSA-AES256-GCM-SHA384', master, ...randoms)?.key.length).toBe(32);
  });

  it('refuses what it cannot do for certain', () => {
    const randoms = [Buffer.alloc(32), Buffer.alloc(32)] as const;
    expect(tls12ServerKey('ECDHE-RSA-AES128-SHA', Buffer.alloc(48), ...randoms)).toBeUndefined();
    expect(tls12ServerKey('TLS_AES_128_GCM_SHA256', Buffer.alloc(48), ...randoms)).toBeUndefined();
    expect(tls12ServerKey('ECDHE-RSA-AES128-GCM-SHA256', Buffer.alloc(47), ...randoms)).toBeUndefined();
  });
});
