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
    cert: readNamed(`${setting}.cert`, paths.cert),
    key: readNamed(`${setting}.key`, paths.key),
    ...(paths.ca ? { ca: readNamed(`${setting}.ca`, paths.ca) } : {}),
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
  const crl = readNamed(setting, file);
  try {
    tls.createSecureContext({ crl });
  } catch (error) {
    throw new Error(`${setting}: ${file} is not a PEM certificate revocation list (${(error as Error).message})`);
  }
  return crl;
}

/** A file a setting names; an error names the setting ("mqtt.tls.cert: cannot read /etc/…: no such file"). */
function readNamed(setting: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    throw new Error(`${setting}: cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : message}`, { cause: error });
  }
}
