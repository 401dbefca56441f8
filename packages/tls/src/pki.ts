/**
 * @packageDocumentation
 * `@sock/tls/pki`: a development PKI (a CA, server and client certificates, files written safely).
 * Its own entry point because it loads @peculiar/x509, which patches the global `Reflect`
 * (reflect-metadata): plain `@sock/tls` users pay for none of it.
 *
 * @example
 * ```ts
 * import { createCA, issueServerCert } from '@sock/tls/pki';
 *
 * const ca = await createCA();
 * const { cert, key } = await issueServerCert(ca, { names: ['localhost', '127.0.0.1'] });
 * ```
 */
export {
  type CreateCAOptions,
  createCA,
  DEFAULT_LEAF_VALIDITY_DAYS,
  type DevCA,
  type DevCertificate,
  type DevKeyType,
  type IssueClientOptions,
  type IssueServerOptions,
  issueClientCert,
  issueServerCert,
  MAX_LEAF_VALIDITY_DAYS,
  type ValidityOptions,
  type WriteOptions,
  type WrittenFiles,
  writeCA,
  writeCertificate,
} from './dev-pki.js';
