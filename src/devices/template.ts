/** Fills `${name}` placeholders (a profile names only those it is given: profile.ts refuses others). */
export function render(template: string, values: Record<string, string>): string {
  return template.replace(/\$\{([A-Za-z_]+)\}/g, (placeholder, name: string) => values[name] ?? placeholder);
}

/** For a value inside a regular expression: `${key}` in an ack pattern matches the key literally. */
export function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
