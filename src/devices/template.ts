/** Fills `${name}` placeholders; unknown names are left as written, so a typo shows up in the output rather than vanishing. */
export function render(template: string, values: Record<string, string>): string {
  return template.replace(/\$\{([A-Za-z_]+)\}/g, (placeholder, name: string) => values[name] ?? placeholder);
}

/** For a value inside a regular expression: `${key}` in an ack pattern matches the key literally. */
export function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
