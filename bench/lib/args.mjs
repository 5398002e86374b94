// Command-line options of a bench script: node:util's parseArgs, with `-h, --help` printing what
// each option does (its `help`, next to its type and default) and an unknown option printing the
// same usage and exiting 2, rather than a stack trace.
import { parseArgs } from 'node:util';

/**
 * `usage`: the first line(s), e.g. "usage: node bench/objects/run.mjs [options]\n\nWhat it measures.";
 * `options`: parseArgs' options, each with a `help` string.
 */
export function benchArgs(usage, options) {
  const all = { ...options, help: { type: 'boolean', short: 'h', default: false, help: 'this text' } };
  let values;
  try {
    ({ values } = parseArgs({ options: all }));
  } catch (error) {
    process.stderr.write(`${error.message}\n\n${usageText(usage, all)}`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(usageText(usage, all));
    process.exit(0);
  }
  return values;
}

function usageText(usage, options) {
  const rows = Object.entries(options).map(([name, option]) => {
    const flag = `${option.short ? `-${option.short}, ` : '    '}--${name}${option.type === 'string' ? ' VALUE' : ''}`;
    const fallback = option.type === 'string' && option.default !== undefined ? ` (default: ${option.default === '' ? 'none' : option.default})` : '';
    return [flag, `${option.help ?? ''}${fallback}`];
  });
  const width = Math.max(...rows.map(([flag]) => flag.length)) + 2;
  return `${usage.trimEnd()}\n\n${rows.map(([flag, text]) => `  ${flag.padEnd(width)}${text}`).join('\n')}\n`;
}
