/**
 * `sock … | head` closes our stdout early. Like the classic tools (which die of SIGPIPE without a word),
 * we then end quietly with status 0 instead of printing an EPIPE stack trace: the reader has all it
 * wanted. Any other stream error is still reported.
 */
export function endQuietlyOnClosedPipes(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') process.exit(0);
      throw err;
    });
  }
}
