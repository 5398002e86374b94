import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Debian's libfaketime (package libfaketime, pulled in by faketime), wherever the architecture puts it. */
export const LIBFAKETIME = (() => {
  try {
    return execFileSync('dpkg', ['-L', 'libfaketime'], { encoding: 'utf8' }).split('\n').find((path) => path.endsWith('/libfaketime.so.1') && existsSync(path));
  } catch {
    return undefined;
  }
})();
