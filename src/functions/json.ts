/** Whether `text` parses as JSON (an event, a schedule's Input). */
export function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
