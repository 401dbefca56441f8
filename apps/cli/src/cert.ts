import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { spkiPin } from '@sock/tls';
import {
  createCA,
  type DevKeyType,
  issueClientCert,
  issueServerCert,
  MAX_LEAF_VALIDITY_DAYS,
  writeCA,
  writeCertificate,
} from '@sock/tls/pki';
import type { Command } from 'commander';
import { UsageError } from './errors.js';
import { parseCount } from './parse.js';

interface CertFlags {
  dir: string;
  ed25519?: boolean;
  days?: string;
  force?: boolean;
  json?: boolean;
  server?: string[];
  client?: string;
  spiffe?: string;
  name?: string;
  insecureLongValidity?: boolean;
  insecureSharedDir?: boolean;
}

function print(flags: CertFlags, json: Record<string, unknown>, lines: string[]): void {
  process.stdout.write(flags.json ? `${JSON.stringify(json)}\n` : `${lines.join('\n')}\n`);
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function certCommand(program: Command): void {
  const cert = program.command('cert').description('a development PKI: a CA, server and client certificates');
  cert
    .command('init')
    .description('create a CA (ca.crt, ca.key) in --dir')
    .option('--dir <dir>', 'where the files go', 'pki')
    .option('--ed25519', 'Ed25519 keys (default ECDSA P-256)')
    .option('--days <n>', 'validity in days (default 3650 for the CA)')
    .option('--force', 'replace an existing CA (every certificate it issued stops being trusted)')
    .option(
      '--insecure-shared-dir',
      'allow a --dir other users can write to (they could read or replace the keys)',
    )
    .option('--json', 'print the paths as JSON')
    .action(async (flags: CertFlags) => {
      const dir = resolve(flags.dir);
      if (existsSync(join(dir, 'ca.key')) && !flags.force) {
        throw new UsageError(`${join(dir, 'ca.key')} exists; pass --force to replace the CA`);
      }
      const ca = await createCA({ ...keyOptions(flags, false), commonName: 'sock development CA' });
      const files = await writeCA(dir, ca, writeOptions(flags));
      print(flags, { ca: files.certPath, key: files.keyPath }, [
        `CA certificate: ${files.certPath}`,
        `CA key:         ${files.keyPath} (mode 0600; keep it private)`,
        '',
        'Trust it where you verify peers, e.g.:',
        `  sock connect <host> <port> --tls --tls-ca ${files.certPath}`,
        `  sock listen <port> --tls ... --tls-ca ${files.certPath} --require-client-cert`,
        '  (system-wide on Debian: copy it to /usr/local/share/ca-certificates/sock-dev.crt, run update-ca-certificates)',
        '',
        `Next: sock cert issue --dir ${flags.dir} --server localhost 127.0.0.1`,
      ]);
    });
  cert
    .command('issue')
    .description(
      'issue a server (--server <names...>) or client (--client <name>) certificate from the CA in --dir',
    )
    .option('--dir <dir>', 'where the CA is and the files go', 'pki')
    .option('--server <names...>', 'DNS names and IP addresses the server certificate holds')
    .option('--client <name>', "the client's name (common name; files <name>.crt/.key)")
    .option('--spiffe <uri>', 'with --client: a SPIFFE ID as URI SAN, e.g. spiffe://demo.local/user/alice')
    .option('--name <file-stem>', 'file names <stem>.crt and <stem>.key (default server, or the client name)')
    .option('--ed25519', 'Ed25519 key (default ECDSA P-256)')
    .option(
      '--days <n>',
      `validity in days (default 90, at most ${MAX_LEAF_VALIDITY_DAYS}; up to 824 with --insecure-long-validity)`,
    )
    .option(
      '--insecure-long-validity',
      `allow --days above ${MAX_LEAF_VALIDITY_DAYS} (browsers and Mozilla's policy refuse such certificates)`,
    )
    .option(
      '--insecure-shared-dir',
      'allow a --dir other users can write to (they could read or replace the keys)',
    )
    .option('--json', 'print the paths as JSON')
    .action(async (flags: CertFlags) => {
      if (!!flags.server === !!flags.client)
        throw new UsageError('cert issue needs exactly one of --server <names...> or --client <name>');
      if (flags.spiffe && !flags.client) throw new UsageError('--spiffe goes with --client');
      if (flags.client && !NAME.test(flags.client))
        throw new UsageError(
          `--client must be a plain name ([A-Za-z0-9._-], up to 64), got ${JSON.stringify(flags.client)}`,
        );
      // The PKI's own limit (clients refuse longer leaves), checked here to name the flag.
      if (flags.days !== undefined && parseCount(flags.days, '--days') > 825)
        throw new UsageError(`--days must be at most 825 for a leaf certificate, got ${flags.days}`);
      const stem = flags.name ?? (flags.client ? flags.client : 'server');
      if (!NAME.test(stem) || stem === 'ca')
        throw new UsageError(`--name must be a plain file stem other than "ca", got ${JSON.stringify(stem)}`);
      const dir = resolve(flags.dir);
      let ca: { cert: string; key: string };
      try {
        ca = {
          cert: await readFile(join(dir, 'ca.crt'), 'utf8'),
          key: await readFile(join(dir, 'ca.key'), 'utf8'),
        };
      } catch {
        throw new UsageError(`no CA in ${dir}: run sock cert init --dir ${flags.dir} first`);
      }
      const material = flags.server
        ? await issueServerCert(ca, { ...keyOptions(flags, true), names: flags.server })
        : await issueClientCert(ca, {
            ...keyOptions(flags, true),
            commonName: flags.client!,
            ...(flags.spiffe ? { spiffeId: flags.spiffe } : {}),
          });
      const files = await writeCertificate(dir, material, {
        certFile: `${stem}.crt`,
        keyFile: `${stem}.key`,
        ...writeOptions(flags),
      });
      const pin = spkiPin(material.cert);
      const kind = flags.server ? 'server' : 'client';
      print(flags, { kind, cert: files.certPath, key: files.keyPath, ca: join(dir, 'ca.crt'), pin }, [
        `${kind} certificate: ${files.certPath}`,
        `${kind} key:         ${files.keyPath} (mode 0600)`,
        `SPKI pin (--pin):   ${pin}`,
        flags.server
          ? `Serve with: sock listen <port> --tls --tls-cert ${files.certPath} --tls-key ${files.keyPath}`
          : `Connect with: sock connect <host> <port> --tls --tls-ca ${join(dir, 'ca.crt')} --tls-cert ${files.certPath} --tls-key ${files.keyPath}`,
      ]);
    });
  cert
    .command('pin')
    .description("print a certificate's SPKI pin (base64 SHA-256) for --pin")
    .argument('<cert-file>')
    .action(async (file: string) => {
      let pem: string;
      try {
        pem = await readFile(file, 'utf8');
      } catch {
        throw new UsageError(`cannot read ${file}`);
      }
      process.stdout.write(`${spkiPin(pem)}\n`);
    });
}

function keyOptions(
  flags: CertFlags,
  leaf: boolean,
): {
  keyType?: DevKeyType;
  validityDays?: number;
  insecureAllowLongValidity?: boolean;
} {
  const days = flags.days ? parseCount(flags.days, '--days') : undefined;
  if (leaf && days !== undefined && days > MAX_LEAF_VALIDITY_DAYS && !flags.insecureLongValidity) {
    throw new UsageError(
      `--days ${days}: a certificate may be valid for at most ${MAX_LEAF_VALIDITY_DAYS} days (browsers refuse longer); add --insecure-long-validity to issue it anyway`,
    );
  }
  return {
    ...(flags.ed25519 ? { keyType: 'ed25519' as const } : {}),
    ...(days !== undefined ? { validityDays: days } : {}),
    ...(flags.insecureLongValidity ? { insecureAllowLongValidity: true } : {}),
  };
}

function writeOptions(flags: CertFlags): { insecureAllowSharedDirectory?: boolean } {
  return flags.insecureSharedDir ? { insecureAllowSharedDirectory: true } : {};
}
