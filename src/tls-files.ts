import { readFileSync } from 'node:fs';

type Tls = typeof import('node:tls');

/** Paths of a listener's TLS files, as its configuration names them. */
export interface TlsPaths {
  cert: string;
  key: string;
  ca?: string;
  crl?: string;
}

/**
 * A TLS listener's files, read and checked as its secure context takes them (at start, and again
 * on SIGHUP); an error names the setting and the files. `tls` is passed in: a daemon without a
 * TLS listener never loads node:tls.
 */
export function readTlsFiles(setting: string, paths: TlsPaths, tls: Tls): { cert: Buffer; key: Buffer; ca?: Buffer; crl?: Buffer } {
  const files = {
    cert: readFileSync(paths.cert),
    key: readFileSync(paths.key),
    ...(paths.ca ? { ca: readFileSync(paths.ca) } : {}),
    ...(paths.crl ? { crl: readCrl(`${setting}.crl`, paths.crl, tls) } : {}),
  };
  try {
    tls.createSecureContext(files);
  } catch (error) {
    throw new Error(`${setting}: ${[paths.cert, paths.key, paths.ca].filter(Boolean).join(', ')} do not load (${(error as Error).message})`);
  }
  return files;
}

/** The CRL file, or an error naming it: Node's own says only "Failed to parse CRL". */
function readCrl(setting: string, file: string, tls: Tls): Buffer {
  const crl = readFileSync(file);
  try {
    tls.createSecureContext({ crl });
  } catch (error) {
    throw new Error(`${setting}: ${file} is not a PEM certificate revocation list (${(error as Error).message})`);
  }
  return crl;
}
