import { errors, S3Error } from './errors.js';
import { el, isElement } from './xml.js';

/** An object's tags in the order they were given, as [key, value] pairs (`__proto__` is a key like any other). */
export type Tags = Array<[key: string, value: string]>;

// S3 object tagging (User Guide, "Categorizing your objects using tags"): 10 tags at most (a bucket:
// 50), keys of 1-128 Unicode characters, values of 0-256
const MAX_OBJECT_TAGS = 10;
const MAX_BUCKET_TAGS = 50;
const MAX_KEY_CHARACTERS = 128;
const MAX_VALUE_CHARACTERS = 256;
/** AWS tag restrictions: letters, numbers and spaces representable in UTF-8, and + - = . _ : / @. */
const TAG_TEXT = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

const invalidTag = (message: string, extra: Record<string, string>) => new S3Error('InvalidTag', 400, message, extra);

/** An object's tags as S3 checks them (PutObjectTagging, x-amz-tagging, a POST form's `tagging`); they are returned as given. */
export function checkTags(tags: Tags): Tags {
  if (tags.length > MAX_OBJECT_TAGS) throw new S3Error('BadRequest', 400, `Object tags cannot be greater than ${MAX_OBJECT_TAGS}`);
  return checkEachTag(tags);
}

/** A bucket's tags (PutBucketTagging, CreateBucket): each tag is checked before their number, as S3 does. */
export function checkBucketTags(tags: Tags): Tags {
  checkEachTag(tags);
  if (tags.length > MAX_BUCKET_TAGS) throw new S3Error('BadRequest', 400, `Bucket tag count cannot be greater than ${MAX_BUCKET_TAGS}`);
  return tags;
}

function checkEachTag(tags: Tags): Tags {
  const keys = new Set<string>();
  for (const [key, value] of tags) {
    const keyLength = [...key].length;
    if (keyLength === 0 || keyLength > MAX_KEY_CHARACTERS || !TAG_TEXT.test(key)) throw invalidTag('The TagKey you have provided is invalid', { TagKey: key });
    if (key.startsWith('aws:')) throw invalidTag('Your TagKey cannot be prefixed with aws:', { TagKey: key });
    if ([...value].length > MAX_VALUE_CHARACTERS || !TAG_TEXT.test(value)) throw invalidTag('The TagValue you have provided is invalid', { TagKey: key, TagValue: value });
    if (keys.has(key)) throw invalidTag('Cannot provide multiple Tags with the same key', { TagKey: key });
    keys.add(key);
  }
  return tags;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * x-amz-tagging (PutObject, CreateMultipartUpload, CopyObject with REPLACE): URL query parameters
 * `k1=v1&k2=v2`. A key without `=` has an empty value and empty pairs are skipped, as S3 takes them;
 * a pair with two `=`, an empty key, a repeated key or an escape that is not UTF-8 is InvalidArgument.
 */
export function headerTags(text: string | undefined): Tags | undefined {
  if (text === undefined) return undefined;
  const refused = () => errors.invalidArgument(
    "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.", 'x-amz-tagging', text);
  const tags: Tags = [];
  const keys = new Set<string>();
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    const parts = pair.split('=');
    if (parts.length > 2) throw refused();
    let key: string;
    let value: string;
    try {
      // a header's value is its bytes, one latin1 character each
      [key, value = ''] = parts.map((part) => decodeURIComponent(UTF8.decode(Buffer.from(part.replaceAll('+', ' '), 'latin1'))));
    } catch {
      throw refused();
    }
    if (key === '' || keys.has(key)) throw refused();
    keys.add(key);
    tags.push([key, value]);
  }
  return checkTags(tags);
}

/**
 * The tags of a `<Tagging><TagSet><Tag><Key/><Value/></Tag>…</TagSet></Tagging>` document as
 * parseXml gives it (PutObjectTagging's and PutBucketTagging's body, a POST form's `tagging`
 * field), not checked yet; MalformedXML without TagSet.
 */
export function documentTags(parsed: Record<string, any> | undefined): Tags {
  const tagSet = parsed?.Tagging?.TagSet;
  if (tagSet === undefined) throw errors.malformedXml();
  return tagList(tagSet);
}

/** The `<Tag><Key/><Value/></Tag>` elements of a TagSet (or CreateBucket's Tags); MalformedXML for a Tag without its Key or Value. */
export function tagList(container: unknown): Tags {
  // an empty <TagSet/> is parsed as text
  const elements = (isElement(container) ? container.Tag ?? [] : []) as unknown[];
  return elements.map((tag) => {
    const { Key: key, Value: value } = isElement(tag) ? tag : {};
    if (typeof key !== 'string' || typeof value !== 'string') throw errors.malformedXml();
    return [key, value];
  });
}

/** `<TagSet><Tag><Key/><Value/></Tag>…</TagSet>` (GetObjectTagging, GetBucketTagging). */
export function tagSetElement(tags: Tags | undefined): string {
  return el('TagSet', (tags ?? []).map(([key, value]) => el('Tag', [el('Key', key), el('Value', value)])));
}

/** A bucket's tags as it keeps them (JSON [key, value] pairs in their order); none is no tag set (GetBucketTagging's NoSuchTagSet). */
export const bucketTagsJson = (tags: Tags): string | undefined => (tags.length ? JSON.stringify(tags) : undefined);
