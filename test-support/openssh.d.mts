export function tempDir(prefix: string): { dir: string; cleanup(): void };
/** `ssh-keygen -t ed25519` into `path` (and `path.pub`); returns the public line. */
export function sshKeygen(
  path: string,
  options?: { passphrase?: string; type?: string; rounds?: number },
): Promise<string>;
export function freePort(): Promise<number>;
export interface Sshd {
  readonly port: number;
  readonly hostKeyPub: string;
  readonly clientKey: string;
  readonly clientKeyPub: string;
  readonly dir: string;
  stop(): Promise<void>;
}
export function startSshd(extraConfig?: readonly string[]): Promise<Sshd>;
/** OpenSSH `ssh` arguments for a test: no user config, BatchMode, strict host keys from `knownHosts`. */
export function sshClientArgs(options: { knownHosts: string; key?: string; port?: number }): string[];
/** Run `ssh` (see `sshClientArgs`) with `args`, feeding `input`; resolves with exit code and output. */
export function runSsh(
  args: readonly string[],
  options: { knownHosts: string; key?: string; port?: number; input?: string; timeoutMs?: number },
): Promise<{ code: number | null; stdout: string; stderr: string }>;
