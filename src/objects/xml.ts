import type { X2jOptions, XMLParser } from 'fast-xml-parser';

const S3_NAMESPACE = 'http://s3.amazonaws.com/doc/2006-03-01/';

/**
 * Text escaped for an XML element. A control character XML 1.0 has no place for (a key may hold
 * one) is written as S3 writes it, a character reference (`&#x1;`): the JS SDK reads it back, where
 * parsers that keep to XML 1.0 refuse it either way (encoding-type=url is for them).
 */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"'\r\x01-\x08\x0b\x0c\x0e-\x1f]/g, (c) => ESCAPED[c] ?? `&#x${c.charCodeAt(0).toString(16).toUpperCase()};`);
}

const ESCAPED: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;', '\r': '&#13;' };

/** `<name>text</name>`; nested elements are passed as already-built strings in an array. */
export function el(name: string, content: string | number | boolean | string[] | undefined): string {
  if (content === undefined) return '';
  const inner = Array.isArray(content) ? content.join('') : escapeXml(String(content));
  return `<${name}>${inner}</${name}>`;
}

/** A response document: the declaration and the root element in S3's namespace. */
export function document(root: string, children: string[]): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root} xmlns="${S3_NAMESPACE}">${children.join('')}</${root}>`;
}

let parser: XMLParser | undefined;

// XML 1.0 §4.6: the predefined entities; a request has no DTD, so no others
const PREDEFINED_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/**
 * XML 1.0 §2.2 Char: what a document may hold, and a character reference stand for. Clients escape characters with
 * them: Go's encoding/xml writes `"` as `&#34;` (rclone, the Go SDKs), the JS SDK a newline as `&#x0A;`.
 */
function isXmlChar(codePoint: number): boolean {
  return codePoint === 0x9 || codePoint === 0xa || codePoint === 0xd || (codePoint >= 0x20 && codePoint <= 0xd7ff)
    || (codePoint >= 0xe000 && codePoint <= 0xfffd) || (codePoint >= 0x10000 && codePoint <= 0x10ffff);
}

/**
 * Text with the characters XML cannot hold (not a Char, isXmlChar) percent-encoded as UTF-8, as a
 * request's path carried them: for an error document, which a client must be able to parse
 * whatever the request held. (A lone surrogate is encoded as U+FFFD, as UTF-8 encoders write it.)
 */
export function percentEncodeNotXml(text: string): string {
  let encoded = '';
  for (const c of text) {
    const codePoint = c.codePointAt(0)!;
    encoded += isXmlChar(codePoint) ? c : encodeURIComponent(codePoint >= 0xd800 && codePoint <= 0xdfff ? '\uFFFD' : c);
  }
  return encoded;
}

/** A reference's text (XML 1.0 §4.1); an undefined entity or a reference to no Char throws, which is MalformedXML. */
function referenced(name: string): string {
  if (!name.startsWith('#')) {
    // own entries only: `&constructor;` is as undefined an entity as any other
    if (!Object.hasOwn(PREDEFINED_ENTITIES, name)) throw new Error(`undefined entity &${name};`);
    return PREDEFINED_ENTITIES[name];
  }
  const codePoint = name[1] === 'x' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
  if (!isXmlChar(codePoint)) throw new Error(`character reference &${name}; is not an XML character`);
  return String.fromCodePoint(codePoint);
}

/** The parser's entity decoding: the predefined entities and character references, nothing a DOCTYPE declares (XML 1.0 §2.3 Name: `_` and `:` may begin one). */
const entityDecoder: NonNullable<X2jOptions['entityDecoder']> = {
  decode: (text) => (text.includes('&') ? text.replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[A-Za-z_:][\w.:-]*);/g, (_, name: string) => referenced(name)) : text),
  setExternalEntities: () => undefined,
  addInputEntities: () => undefined,
  reset: () => undefined,
  setXmlVersion: () => undefined,
};

/**
 * How many tags (and comments, declarations) a document may hold: the parser's tree costs ~650 bytes
 * of heap per element while it is built, so a 4 MiB body of tiny elements would take the daemon's
 * whole heap. A document is its operation's largest valid one, counted as open and close tags.
 */
export const MAX_MARKUP = {
  /** 1,000 objects (S3's limit) of Object, Key, VersionId, ETag, LastModifiedTime, Size */
  deleteObjects: 2 * (1000 * 6 + 8),
  /** 10,000 parts of Part, PartNumber, ETag and one checksum (the upload's algorithm) */
  completeMultipartUpload: 2 * (10_000 * 4 + 8),
  /** bucket configurations: CreateBucket, notification rules, ACLs */
  configuration: 4_000,
  /** 100 CORS rules (S3's limit) of CORSRule, ID, MaxAgeSeconds and up to 30 origins, methods and headers */
  cors: 2 * (100 * 32 + 2),
  /** 1,000 lifecycle rules of Rule, ID, Filter, And, Prefix, two sizes, Status, Expiration, Days, AbortIncompleteMultipartUpload, DaysAfterInitiation */
  lifecycle: 2 * (1000 * 12 + 2),
} as const;

/**
 * Parses a request body (DeleteObjects, CompleteMultipartUpload, notification configuration, ACLs);
 * the parser is loaded on first use. Elements that may repeat are always arrays. MalformedXML is
 * the caller's to throw on undefined, as for a document with more markup than `maxMarkup`.
 */
export async function parseXml(text: string, maxMarkup: number): Promise<Record<string, any> | undefined> {
  if (!markupWithin(text, maxMarkup)) return undefined;
  if (!parser) {
    const { XMLParser } = await import('fast-xml-parser');
    const repeated = new Set(['Object', 'Part', 'CloudFunctionConfiguration', 'LambdaFunctionConfiguration', 'TopicConfiguration', 'QueueConfiguration', 'Event', 'FilterRule', 'Grant', 'Rule', 'Tag',
      'CORSRule', 'AllowedOrigin', 'AllowedMethod', 'AllowedHeader', 'ExposeHeader']);
    parser = new XMLParser({
      ignoreAttributes: true, removeNSPrefix: true, parseTagValue: false, trimValues: false, processEntities: true, entityDecoder,
      isArray: (name) => repeated.has(name),
    });
  }
  try {
    const parsed = parser.parse(text, true);
    return typeof parsed === 'object' && parsed !== null ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a value of a parsed document is an element with children (not text, not a repeated element's list). */
export function isElement(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Whether the text holds at most `limit` '<' (every tag, comment and declaration starts with one; text escapes it). */
function markupWithin(text: string, limit: number): boolean {
  let count = 0;
  for (let at = text.indexOf('<'); at !== -1; at = text.indexOf('<', at + 1)) {
    if (++count > limit) return false;
  }
  return true;
}

/** ISO 8601 with milliseconds, as S3 writes timestamps in XML. */
/**
 * A time in S3's XML: whole seconds (`….000Z`), as S3 writes every one and as Last-Modified has it;
 * a listing's milliseconds made `aws s3 sync --exact-timestamps` download every object again, each
 * file's mtime being set to the second.
 */
export const isoTime = (epochMs: number) => new Date(Math.floor(epochMs / 1000) * 1000).toISOString();
