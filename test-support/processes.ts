/** Whether a process with this pid exists (signal 0 only checks). For tests of process trees. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
