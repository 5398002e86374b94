import { apiErrors } from './errors.js';
import { parseFunctionName } from './function-service.js';

// Lambda Invoke, GetFunction, DeleteFunction: FunctionName, 1-170 characters of this pattern (as
// its API reference prints it, quoted in the ValidationException).
const LAMBDA_PATTERN = '(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?';
const MAX_LENGTH = 170;
// The same, whole, with this gateway's region `local` (its ARNs' region) beside AWS's.
const FUNCTION_NAME = /^(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d:|local:)?(\d{12}:)?(function:)?[a-zA-Z0-9_.-]+(:(\$LATEST|[a-zA-Z0-9_-]+))?$/;

/**
 * A FunctionName as Lambda takes it (NAME, NAME:QUALIFIER, an ARN or a partial ARN), else Lambda's
 * 400 ValidationException: a malformed name names no function, so it is not answered as one not found.
 */
export function checkedFunctionName(name: string): string {
  const constraint = name.length === 0 ? 'Member must have length greater than or equal to 1'
    : !FUNCTION_NAME.test(name) ? `Member must satisfy regular expression pattern: ${LAMBDA_PATTERN}`
      : name.length > MAX_LENGTH ? `Member must have length less than or equal to ${MAX_LENGTH}` : undefined;
  if (constraint === undefined) return name;
  throw apiErrors.validation('functionName', name, constraint);
}

/**
 * The function a whole-function operation (info, rm, logs, aliases, rollback, dead letters) names:
 * NAME or its ARN, checked as checkedFunctionName. A qualifier is refused, not dropped: `rm NAME:3`
 * would otherwise remove every version.
 */
export function unqualifiedFunctionName(text: string): string {
  const { name, qualifier } = parseFunctionName(checkedFunctionName(text));
  if (qualifier !== undefined) throw apiErrors.invalidParameter(`${text}: expected a function name without a version or alias (this applies to the whole function)`);
  return name;
}
