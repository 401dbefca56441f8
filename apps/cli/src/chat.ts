/**
 * `sock listen --chat`: what ncat's chat mode shows (`<userN> text`, `<announce>` lines for joins and
 * leaves), with one difference that matters: a user's text is made inert before it reaches other
 * terminals. Control characters, escape sequences (ANSI colours, cursor moves, OSC 52 clipboard writes,
 * title changes) and bidirectional overrides are shown as `\xNN` / `\u{NNNN}` instead of being sent
 * raw, so one user cannot drive or spoof another's terminal.
 */

/** C0 controls (TAB kept), DEL, C1 controls, line/paragraph separators, bidi embeddings and isolates. */
const UNSAFE =
  /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f]/gu;

/** A message's bytes as text that cannot act on a terminal. */
function inertText(message: Uint8Array): string {
  const text = Buffer.from(message).toString('utf8');
  return text.replace(UNSAFE, (c) => {
    const code = c.codePointAt(0)!;
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}

/** The line other users see for a message. */
export function chatLine(userId: number, message: Uint8Array): Buffer {
  return Buffer.from(`<user${userId}> ${inertText(message)}`);
}

/** ncat's announcements (one line each, without the newline the framing adds). */
export const announce = {
  joined: (address: string, userId: number) =>
    Buffer.from(`<announce> ${address} is connected as <user${userId}>.`),
  present: (userIds: readonly number[]) =>
    Buffer.from(
      `<announce> already connected: ${userIds.length === 0 ? 'nobody' : userIds.map((id) => `<user${id}>`).join(', ')}.`,
    ),
  left: (userId: number) => Buffer.from(`<announce> <user${userId}> is disconnected.`),
};
