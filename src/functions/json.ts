import { apiErrors } from './errors.js';

/**
 * An Invoke payload as its event: the text as sent, for Lambda's Invoke hands the function the
 * payload's bytes, not JSON written again (`1e400`, a 20-digit integer, key order and spaces stay as
 * they are; `{}` for none). Lambda refuses one that is no JSON with InvalidRequestContentException.
 */
export function invokeEvent(payload: string): string {
  const event = payload.length === 0 ? '{}' : payload;
  if (!isJson(event)) throw apiErrors.invalidPayload();
  return event;
}

/** Whether `text` parses as JSON (an event, a schedule's Input). */
export function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * A function's response as a value, for an invocation record or the admin API's answer. A Python
 * handler's response is what json.dumps wrote, which may be no JSON at all (NaN, Infinity): it is
 * kept as text.
 */
export function responseValue(payload: Buffer): unknown {
  const answer = responseAnswer(payload);
  return 'payload' in answer ? answer.payload : answer.payloadText;
}

/**
 * A function's response as the admin API answers it: `payload`, its JSON value, or `payloadText`,
 * a text that is no JSON, as it is (so a Python handler's NaN is told from a handler's "NaN").
 */
export function responseAnswer(payload: Buffer): { payload: unknown } | { payloadText: string } {
  const text = payload.toString();
  try {
    return { payload: JSON.parse(text) as unknown };
  } catch {
    return { payloadText: text };
  }
}
