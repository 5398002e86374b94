// S3 user-defined metadata: "When using non US-ASCII characters in your metadata values, the provided
// unicode string is examined for non US-ASCII characters. Values of such headers are character
// decoded as per RFC 2047 before storing and encoded as per RFC 2047 to make them mail-safe before
// returning. If the string contains only US-ASCII characters, it is presented as is." (UsingMetadata)

/** RFC 2047 §2 encoded-word: =?charset?encoding?encoded-text?= (RFC 2231 §5: the charset may carry *language). */
const ENCODED_WORD = /=\?([^?\s*]+)(?:\*[^?\s]*)?\?([BbQq])\?([^?\s]*)\?=/g;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const LINEAR_WHITE_SPACE = /^[ \t]+$/;
/** What a header value may hold as it is (a tab too); anything else is returned encoded. */
const PRINTABLE_US_ASCII = /^[\t\x20-\x7e]*$/;

/**
 * A metadata value with its RFC 2047 encoded words decoded. A word in a charset this runtime has no
 * decoder for, or whose text is not what its encoding allows, stays as it was.
 */
export function decodeMimeWords(value: string): string {
  if (!value.includes('=?')) return value;
  let decoded = '';
  let copiedTo = 0;
  let afterWord = false;
  for (const match of value.matchAll(ENCODED_WORD)) {
    const text = wordText(match[1], match[2].toUpperCase() as 'B' | 'Q', match[3]);
    if (text === undefined) continue;
    const between = value.slice(copiedTo, match.index);
    // RFC 2047 §6.2: white space between two encoded words is not part of the text
    if (!(afterWord && LINEAR_WHITE_SPACE.test(between))) decoded += between;
    decoded += text;
    copiedTo = match.index + match[0].length;
    afterWord = true;
  }
  return decoded + value.slice(copiedTo);
}

/** A stored metadata value as S3 returns it: printable US-ASCII as it is, anything else as one UTF-8 "B" encoded word. */
export function mailSafe(value: string): string {
  return PRINTABLE_US_ASCII.test(value) ? value : `=?UTF-8?B?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

function wordText(charset: string, encoding: 'B' | 'Q', text: string): string | undefined {
  const bytes = encoding === 'B' ? (BASE64.test(text) ? Buffer.from(text, 'base64') : undefined) : quotedBytes(text);
  if (!bytes) return undefined;
  try {
    return new TextDecoder(charset, { fatal: true }).decode(bytes);
  } catch {
    // a charset without a decoder here (RangeError), bytes that are not of it (TypeError)
    return undefined;
  }
}

/** RFC 2047 §4.2 "Q": `_` is a space, `=XX` a byte, any other printable ASCII itself. */
function quotedBytes(text: string): Buffer | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x5f) bytes.push(0x20);
    else if (code === 0x3d) {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (code > 0x20 && code < 0x7f) bytes.push(code);
    else return undefined;
  }
  return Buffer.from(bytes);
}
