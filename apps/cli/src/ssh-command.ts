import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { UsageError } from './errors.js';

/** `sock ssh keygen`: an Ed25519 key in OpenSSH format, for `sock listen --ssh --ssh-host-key`. */
export function sshCommand(program: Command): void {
  const ssh = program.command('ssh').description('SSH helpers');
  ssh
    .command('keygen')
    .description(
      'write a new Ed25519 SSH key (OpenSSH format, mode 0600) and its .pub; print the fingerprint',
    )
    .requiredOption('-f, --file <path>', 'private key file to write (the public key goes to <path>.pub)')
    .option('-C, --comment <text>', 'comment in the public key', 'sock')
    .option('--force', 'overwrite existing files')
    .option('--json', 'print {file, publicKey, fingerprint} as JSON')
    .action(async (flags: { file: string; comment: string; force?: boolean; json?: boolean }) => {
      for (const path of [flags.file, `${flags.file}.pub`]) {
        if (existsSync(path) && !flags.force)
          throw new UsageError(`${path} exists; pass --force to overwrite it`);
      }
      const { generateSshKey } = await import('@sock/ssh');
      const pair = generateSshKey(flags.comment);
      // 'wx' unless --force: never follow a file (or symlink) that appeared since the check.
      const flag = flags.force ? 'w' : 'wx';
      writeFileSync(flags.file, pair.privateKey, { mode: 0o600, flag });
      chmodSync(flags.file, 0o600);
      writeFileSync(`${flags.file}.pub`, `${pair.publicKey}\n`, { mode: 0o644, flag });
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify({ file: flags.file, publicKey: pair.publicKey, fingerprint: pair.fingerprint })}\n`,
        );
      } else process.stdout.write(`${pair.fingerprint} ${flags.file}\n`);
    });
}
