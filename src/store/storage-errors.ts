// What a failed write of the store says about the disk, for the services to answer in their protocol's terms.

/** A file system's (ENOSPC; EDQUOT: the user's quota) or SQLite's (SQLITE_FULL) word for a full disk. */
const DISK_FULL = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL']);
/** The disk failing or gone read-only under the store (SQLite's extended codes start with these). */
const DISK_FAILING = ['EIO', 'EROFS', 'SQLITE_IOERR', 'SQLITE_READONLY', 'SQLITE_CANTOPEN', 'SQLITE_CORRUPT'];

const codeOf = (error: unknown): string | undefined => {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
};

export function isDiskFull(error: unknown): boolean {
  const code = codeOf(error);
  return code !== undefined && DISK_FULL.has(code);
}

/** A write the disk refused (full, failing, read-only), rather than one the request made wrong. */
export function isStorageFailure(error: unknown): boolean {
  const code = codeOf(error);
  return code !== undefined && (DISK_FULL.has(code) || DISK_FAILING.some((prefix) => code.startsWith(prefix)));
}
