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
export function responseValue(payload: string): unknown {
  try {
    return JSON.parse(payload) as unknown;
  } catch {
    return payload;
  }
}
