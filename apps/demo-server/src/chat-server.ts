import {
  type Connection,
  createServer,
  delimited,
  json,
  type Plugin,
  type ServerTransport,
  type SockEvent,
  type SockServer,
} from '@sock/core';

/** What a chat client may send: validated at the wire. */
export type ChatIn = { type: 'hello'; name: string } | { type: 'say'; text: string };
export type ChatOut =
  | { type: 'welcome'; name: string; online: number }
  | { type: 'said'; from: string; text: string }
  | { type: 'error'; code: string; message: string };

const chatSchema = {
  '~standard': {
    version: 1 as const,
    vendor: 'sock-demo',
    validate(value: unknown): { value: ChatIn; issues?: undefined } | { issues: Array<{ message: string }> } {
      const v = value as Record<string, unknown> | null;
      if (v && v.type === 'hello' && typeof v.name === 'string' && /^[\w-]{1,32}$/.test(v.name)) {
        return { value: v as ChatIn };
      }
      if (v && v.type === 'say' && typeof v.text === 'string' && v.text.length <= 1000)
        return { value: v as ChatIn };
      return {
        issues: [{ message: 'expected {type:"hello",name} or {type:"say",text} (text ≤ 1000 chars)' }],
      };
    },
  },
};

export interface ChatServerOptions {
  maxFrameBytes?: number;
  observers?: Array<(e: SockEvent) => void>;
  /** TLS (from @sock/tls) or plain TCP. */
  transport?: ServerTransport;
  /** Guards and other pipeline plug-ins. */
  plugins?: Plugin[];
  /** The name a connection is known by (its certificate), overriding the `hello` name. */
  nameOf?: (conn: Connection<ChatIn, ChatOut>) => string | undefined;
  /** Called with the number of users online whenever it changes. */
  onOnline?: (online: number) => void;
  /** Shared membership, so several listeners form one room. */
  members?: Map<Connection<ChatIn, ChatOut>, string>;
}

/** A JSON-lines chat: `hello` names you, `say` broadcasts to everyone else. */
export function createChatServer(options: ChatServerOptions = {}): SockServer<ChatIn, ChatOut> {
  const members = options.members ?? new Map<Connection<ChatIn, ChatOut>, string>();
  return createServer<ChatIn, ChatOut>({
    ...(options.transport ? { transport: options.transport } : {}),
    plugins: options.plugins ?? [],
    framing: delimited({ maxFrameBytes: options.maxFrameBytes ?? 2048 }),
    codec: json({ schema: chatSchema }),
    onInvalidMessage: 'reply',
    onFrameTooLarge: 'reply-close',
    errorReply: (error) => ({ type: 'error', code: error.code, message: error.message }),
    observers: options.observers ?? [],
    async handler(conn) {
      try {
        for await (const message of conn) {
          if (message.type === 'hello') {
            const name = options.nameOf?.(conn) ?? message.name;
            members.set(conn, name);
            options.onOnline?.(members.size);
            await conn.send({ type: 'welcome', name, online: members.size });
            continue;
          }
          const from = members.get(conn);
          if (!from) {
            await conn.send({ type: 'error', code: 'NOT_JOINED', message: 'say hello first' });
            continue;
          }
          for (const [peer] of members) {
            if (peer !== conn) peer.send({ type: 'said', from, text: message.text }).catch(() => {});
          }
        }
      } finally {
        if (members.delete(conn)) options.onOnline?.(members.size);
      }
    },
  });
}
