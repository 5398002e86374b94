import { extname } from 'node:path';

// The types a camera, logger or app on site most likely writes; everything else is binary.
const TYPES: Record<string, string> = {
  '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png', '.gif': 'image/gif', '.webp': 'image/webp', '.bmp': 'image/bmp',
  '.tif': 'image/tiff', '.tiff': 'image/tiff', '.svg': 'image/svg+xml',
  '.mp4': 'video/mp4', '.mov': 'video/quicktime', '.mkv': 'video/x-matroska', '.avi': 'video/x-msvideo', '.h264': 'video/h264',
  '.mp3': 'audio/mpeg', '.wav': 'audio/wav', '.ogg': 'audio/ogg',
  '.txt': 'text/plain', '.log': 'text/plain', '.csv': 'text/csv', '.html': 'text/html', '.htm': 'text/html', '.css': 'text/css',
  '.json': 'application/json', '.ndjson': 'application/x-ndjson', '.xml': 'application/xml', '.yaml': 'application/yaml', '.yml': 'application/yaml',
  '.js': 'text/javascript', '.pdf': 'application/pdf', '.zip': 'application/zip', '.gz': 'application/gzip', '.tar': 'application/x-tar',
  '.parquet': 'application/vnd.apache.parquet',
};

/** S3's default for an upload without Content-Type. */
export const DEFAULT_CONTENT_TYPE = 'binary/octet-stream';

/** The Content-Type of a file written into the share, from its extension. */
export function guessContentType(key: string): string {
  return TYPES[extname(key).toLowerCase()] ?? 'application/octet-stream';
}
