/**
 * Integers a double does not hold exactly. JSON.parse rounds them silently (9007199254740993 becomes
 * …992): RFC 8259 §6 makes only integers within ±(2^53-1) interoperable. Fractions and exponents
 * are taken as the doubles they denote.
 */

/** A JSON string (skipped whole), or a number. */
const JSON_TOKEN = /"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;

/** Beyond 2^53-1 an integer has 16 digits at least: most texts have no such run and skip the scan. */
const LONG_DIGIT_RUN = /\d{16}/;

/** Integer text (digits, an optional sign) whose value a double would round. */
export function isInexactInteger(text: string): boolean {
  return /^[+-]?\d+$/.test(text) && !Number.isSafeInteger(Number(text));
}

/** The integer literals of a valid JSON text that JSON.parse would round. */
export function inexactIntegers(text: string): string[] {
  if (!LONG_DIGIT_RUN.test(text)) return [];
  const found: string[] = [];
  for (const [token] of text.matchAll(JSON_TOKEN)) if (isInexactInteger(token)) found.push(token);
  return found;
}

/** The JSON text with each integer literal JSON.parse would round turned into a string of its digits. */
export function quoteInexactIntegers(text: string): string {
  if (!LONG_DIGIT_RUN.test(text)) return text;
  return text.replace(JSON_TOKEN, (token) => (isInexactInteger(token) ? `"${token}"` : token));
}
