import type { XMLParser } from 'fast-xml-parser';

const S3_NAMESPACE = 'http://s3.amazonaws.com/doc/2006-03-01/';

/** Text escaped for an XML element. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"'\r]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;', '\r': '&#13;' })[c]!);
}

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

/**
 * Parses a request body (DeleteObjects, CompleteMultipartUpload, notification configuration);
 * the parser is loaded on first use. Elements that may repeat are always arrays. MalformedXML is
 * the caller's to throw on undefined.
 */
export async function parseXml(text: string): Promise<Record<string, any> | undefined> {
  if (!parser) {
    const { XMLParser } = await import('fast-xml-parser');
    const repeated = new Set(['Object', 'Part', 'CloudFunctionConfiguration', 'LambdaFunctionConfiguration', 'TopicConfiguration', 'QueueConfiguration', 'Event', 'FilterRule']);
    parser = new XMLParser({
      ignoreAttributes: true, removeNSPrefix: true, parseTagValue: false, trimValues: false, processEntities: true,
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

/** ISO 8601 with milliseconds, as S3 writes timestamps in XML. */
export const isoTime = (epochMs: number) => new Date(epochMs).toISOString();
