const warned = new Set<string>();

/** Emit a process warning once per `key` (insecure modes must be loud, not noisy). */
export function warnOnce(key: string, message: string): void {
  if (warned.has(key)) return;
  warned.add(key);
  process.emitWarning(message, {
    code: `SOCK_TLS_${key.toUpperCase().replace(/-/g, '_')}`,
    type: 'SecurityWarning',
  });
}

/** @internal For tests: forget which warnings were given. */
export function resetWarnings(): void {
  warned.clear();
}
