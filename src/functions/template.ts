import yaml from 'js-yaml';
import { z, type ZodIssue } from 'zod/v3';
import { FunctionApiError } from './errors.js';
import { isJson } from './json.js';
import { parseSchedule, type ScheduleSpec } from './schedules.js';
import { isValidFilter } from '../broker/topic.js';

/** One function of a template, validated: what a version is made of besides its code. */
export interface FunctionSpec {
  name: string;
  handler: string;
  runtime: string;
  /** Relative to the template's directory. */
  codeUri: string;
  memorySize: number;
  timeout: number;
  environment: Record<string, string>;
  /** Instances the function may run at once, all versions together, set aside out of functions.maxConcurrency; undefined means `functions.maxInstances` per version. */
  reservedConcurrency?: number;
  /** MQTT topic filters whose messages invoke the function asynchronously. */
  topics: string[];
  /** MQTT triggers with an OutputTopic: a result of an event from `filter` is published on `topic`; absent when there are none. */
  outputs?: Array<{ filter: string; topic: string }>;
  /** Schedule events (EventBridge rate/cron); absent when there are none, so older versions' hashes stay. */
  schedules?: ScheduleSpec[];
  /** `Metadata.Outpost.Isolation: process`: Node.js instances are child processes instead of worker threads; absent otherwise. */
  isolation?: 'process';
  /** EventInvokeConfig: overrides `functions.maxRetryAttempts` / `maxEventAgeSeconds`; absent keys are absent. */
  maxRetryAttempts?: number;
  maxEventAgeSeconds?: number;
  /** EventInvokeConfig.DestinationConfig: where the invocation records of asynchronous invocations go; absent when none. */
  destinations?: { onSuccess?: Destination; onFailure?: Destination };
}

/** A destination of invocation records: a function (name or ARN, invoked asynchronously) or, Outpost's, an MQTT topic. */
export interface Destination {
  type: 'Lambda' | 'MQTT';
  destination: string;
}

// Set by the runtime: AWS refuses templates that set them, and so do we.
const RESERVED_VARIABLES = new Set([
  '_HANDLER', '_X_AMZN_TRACE_ID', 'AWS_DEFAULT_REGION', 'AWS_REGION', 'AWS_EXECUTION_ENV', 'AWS_LAMBDA_FUNCTION_NAME',
  'AWS_LAMBDA_FUNCTION_MEMORY_SIZE', 'AWS_LAMBDA_FUNCTION_VERSION', 'AWS_LAMBDA_INITIALIZATION_TYPE', 'AWS_LAMBDA_LOG_GROUP_NAME',
  'AWS_LAMBDA_LOG_STREAM_NAME', 'AWS_ACCESS_KEY', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_LAMBDA_RUNTIME_API',
  'LAMBDA_TASK_ROOT', 'LAMBDA_RUNTIME_DIR',
]);
// Lambda's EnvironmentVariableName pattern: a letter, then at least one letter, digit or _.
const VARIABLE_NAME = /^[A-Za-z][A-Za-z0-9_]+$/;
// Lambda's limit of a function's variables together, measured as their JSON.
const MAX_VARIABLES_BYTES = 4096;

const text = (expected: string) => z.string({ invalid_type_error: expected, required_error: expected }).min(1, { message: expected });
const integer = (expected: string, min: number, max: number) =>
  z.number({ invalid_type_error: expected, required_error: expected }).int({ message: expected }).min(min, { message: expected }).max(max, { message: expected });

const topicFilter = text('expected an MQTT topic filter').refine(isValidFilter, { message: 'expected an MQTT topic filter (+ and # as whole levels, # last)' });

const topicName = text('expected an MQTT topic name').refine((topic) => !/[+#]/.test(topic), { message: 'expected an MQTT topic name (no + or # wildcards)' });

// A function as NAME, NAME:QUALIFIER, its ARN or its partial ARN (Lambda's FunctionName forms).
const FUNCTION_ARN_PREFIX = /^(arn:aws[a-z-]*:lambda:[^:]*:[^:]*:function:|\d{12}:function:)/;
const FUNCTION_NAME = new RegExp(`${FUNCTION_ARN_PREFIX.source}?[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9$_-]{1,128})?$`);

// DestinationConfig.OnSuccess / OnFailure: Lambda's Type: Lambda, and Type: MQTT standing in for SNS and SQS on a gateway.
const destinationSchema = z.discriminatedUnion('Type', [
  z.strictObject({ Type: z.literal('Lambda'), Destination: text('expected a function name or ARN').refine((name) => FUNCTION_NAME.test(name), { message: 'expected a function name or ARN' }) }),
  z.strictObject({ Type: z.literal('MQTT'), Destination: topicName }),
], { errorMap: (issue, ctx) => ({ message: issue.code === 'invalid_union_discriminator' ? 'expected Type Lambda or MQTT (Outpost has no SQS, SNS, S3 or EventBridge)' : ctx.defaultError }) });

const mqttEvent = z.strictObject({
  Type: z.literal('MQTT'),
  // OutputTopic (Outpost's): where what the handler returns for this trigger is published.
  Properties: z.strictObject({ Topic: topicFilter, OutputTopic: topicName.optional() }),
});
const scheduleEvent = z.strictObject({
  Type: z.literal('Schedule'),
  Properties: z.strictObject({
    Schedule: text('expected rate(...) or cron(...)').superRefine((expression, ctx) => {
      try {
        parseSchedule(expression);
      } catch (error) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: (error as Error).message });
      }
    }),
    // The target's constant Input: JSON text sent instead of the Scheduled Event.
    Input: z.string({ invalid_type_error: 'expected JSON text' }).refine(isJson, { message: 'expected JSON text' }).optional(),
    Enabled: z.boolean({ invalid_type_error: 'expected true or false' }).optional(),
    // The rule's state, as EventBridge's: SAM takes it or Enabled, not both.
    State: z.enum(['ENABLED', 'DISABLED'], { errorMap: () => ({ message: 'expected ENABLED or DISABLED' }) }).optional(),
    // The rule's name (EventBridge's: letters, digits, . - _, up to 64), in the event's resources.
    Name: text('expected a rule name').regex(/^[A-Za-z0-9._-]{1,64}$/, { message: 'expected a rule name of up to 64 letters, digits, ., - and _' }).optional(),
    Description: z.string({ invalid_type_error: 'expected a string' }).optional(),
  }).refine((properties) => properties.Enabled === undefined || properties.State === undefined, { message: 'Enabled and State: expected one of them, not both', path: ['State'] }),
});
const eventSchema = z.object({ Type: text('expected an event type') }).passthrough().superRefine((event, ctx) => {
  const schema = event.Type === 'MQTT' ? mqttEvent : event.Type === 'Schedule' ? scheduleEvent : undefined;
  if (schema) {
    const parsed = schema.safeParse(event);
    if (!parsed.success) for (const issue of parsed.error.issues) ctx.addIssue(issue);
  } else {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['Type'], message: `unsupported event type "${event.Type}": expected "MQTT" or "Schedule"` });
  }
});
type EventInput = { Type: string; Properties?: { Topic?: string; OutputTopic?: string; Schedule?: string; Input?: string; Enabled?: boolean; State?: string; Name?: string } };

const variableValue = z.union([z.string(), z.number(), z.boolean()], { errorMap: () => ({ message: 'expected a string value' }) });

const propertiesSchema = z.strictObject({
  FunctionName: text('expected a function name').optional(),
  Description: z.string({ invalid_type_error: 'expected a string' }).optional(),
  Handler: text('expected a handler such as "index.handler"'),
  Runtime: text('expected a runtime such as "nodejs20.x"').refine((runtime) => /^(nodejs\d+\.x|python3\.\d+)$/.test(runtime), (runtime) => ({
    message: `unsupported runtime "${runtime}": expected nodejs*.x or python3.*`,
  })),
  CodeUri: text('expected a directory relative to the template').default('.'),
  // AWS's limits: 128-10240 MB, 1-900 s.
  MemorySize: integer('expected megabytes 128-10240', 128, 10240).default(128),
  Timeout: integer('expected seconds 1-900', 1, 900).default(3),
  Environment: z.strictObject({ Variables: z.record(variableValue).default({}) }).default({}),
  ReservedConcurrentExecutions: integer('expected an instance count ≥ 0', 0, 1000).optional(),
  Events: z.record(eventSchema).default({}),
  // AWS's limits: 0-2 retries, 60-21600 s.
  EventInvokeConfig: z.strictObject({
    MaximumRetryAttempts: integer('expected retries 0-2', 0, 2).optional(),
    MaximumEventAgeInSeconds: integer('expected seconds 60-21600', 60, 21600).optional(),
    DestinationConfig: z.strictObject({ OnSuccess: destinationSchema.optional(), OnFailure: destinationSchema.optional() }).optional(),
  }).optional(),
});

// Outpost's own settings of a function, where CloudFormation keeps tool-specific data (as SAM's BuildMethod).
const metadataSchema = z.object({
  Outpost: z.strictObject({
    Isolation: z.enum(['thread', 'process'], { errorMap: () => ({ message: 'expected "thread" or "process"' }) }).optional(),
  }, { invalid_type_error: 'expected a map' }).optional(),
}, { invalid_type_error: 'expected a map' });

const templateSchema = z.strictObject({
  AWSTemplateFormatVersion: z.union([z.string(), z.date()]).optional(),
  Transform: z.union([z.string(), z.array(z.string())]).optional(),
  Description: z.string({ invalid_type_error: 'expected a string' }).optional(),
  Resources: z.record(z.strictObject({
    Type: z.literal('AWS::Serverless::Function', { errorMap: () => ({ message: 'expected AWS::Serverless::Function (the only resource type supported)' }) }),
    Properties: propertiesSchema,
    Metadata: metadataSchema.optional(),
  }), { invalid_type_error: 'expected a map of resources', required_error: 'expected a map of resources' }),
});

/** Parses and validates a template; any problem becomes one 400 naming each offending key. */
export function parseTemplate(source: string, file: string): FunctionSpec[] {
  let document: unknown;
  try {
    document = yaml.load(source, { filename: file });
  } catch (error) {
    throw invalid(file, [`invalid YAML: ${(error as Error).message}`]);
  }
  const parsed = templateSchema.safeParse(document);
  if (!parsed.success) throw invalid(file, parsed.error.issues.map(describeIssue));
  const problems: string[] = [];
  const specs = Object.entries(parsed.data.Resources).map(([logicalId, { Properties: p, Metadata: metadata }]): FunctionSpec => {
    const isolation = metadata?.Outpost?.Isolation;
    // Python has no threads to run in: its instances are always processes.
    if (isolation === 'thread' && p.Runtime.startsWith('python')) problems.push(`Resources.${logicalId}.Metadata.Outpost.Isolation: python runtimes always run in a process`);
    const name = p.FunctionName ?? logicalId;
    const events = Object.entries(p.Events as Record<string, EventInput>);
    const schedules = events.filter(([, event]) => event.Type === 'Schedule' && event.Properties?.Enabled !== false && event.Properties?.State !== 'DISABLED')
      .map(([key, event]) => ({ rule: event.Properties!.Name ?? `${name}-${key}`, expression: event.Properties!.Schedule!, ...(event.Properties!.Input !== undefined ? { input: event.Properties!.Input } : {}) }));
    const destinations = destinationsOf(p.EventInvokeConfig?.DestinationConfig);
    for (const [condition, target] of Object.entries(destinations ?? {})) {
      // A function that is its own destination would invoke itself forever.
      if (target.type === 'Lambda' && target.destination.replace(FUNCTION_ARN_PREFIX, '').split(':')[0] === name) {
        problems.push(`Resources.${logicalId}.Properties.EventInvokeConfig.DestinationConfig.${condition === 'onSuccess' ? 'OnSuccess' : 'OnFailure'}.Destination: a function cannot be its own destination`);
      }
    }
    const outputs = events.filter(([, event]) => event.Type === 'MQTT' && event.Properties?.OutputTopic !== undefined)
      .map(([, event]) => ({ filter: event.Properties!.Topic!, topic: event.Properties!.OutputTopic! }));
    return {
    name,
    handler: p.Handler,
    runtime: p.Runtime,
    codeUri: p.CodeUri,
    memorySize: p.MemorySize,
    timeout: p.Timeout,
    environment: Object.fromEntries(Object.entries(p.Environment.Variables).map(([key, value]) => [key, String(value)])),
    ...(p.ReservedConcurrentExecutions !== undefined ? { reservedConcurrency: p.ReservedConcurrentExecutions } : {}),
    ...(isolation === 'process' && !p.Runtime.startsWith('python') ? { isolation } : {}),
    topics: events.filter(([, event]) => event.Type === 'MQTT').map(([, event]) => event.Properties!.Topic!),
    ...(outputs.length > 0 ? { outputs } : {}),
    ...(schedules.length > 0 ? { schedules } : {}),
    // Only when set, so the hash of a version deployed before these keys existed does not change.
    ...(p.EventInvokeConfig?.MaximumRetryAttempts !== undefined ? { maxRetryAttempts: p.EventInvokeConfig.MaximumRetryAttempts } : {}),
    ...(p.EventInvokeConfig?.MaximumEventAgeInSeconds !== undefined ? { maxEventAgeSeconds: p.EventInvokeConfig.MaximumEventAgeInSeconds } : {}),
    ...(destinations ? { destinations } : {}),
    };
  });
  problems.push(...specs.flatMap(checkSpec), ...(specs.length === 0 ? ['Resources: expected at least one AWS::Serverless::Function'] : []));
  if (problems.length) throw invalid(file, problems);
  return specs;
}

type DestinationInput = { Type: 'Lambda' | 'MQTT'; Destination: string } | undefined;

function destinationsOf(config: { OnSuccess?: DestinationInput; OnFailure?: DestinationInput } | undefined): FunctionSpec['destinations'] {
  const toDestination = (input: DestinationInput) => (input ? { type: input.Type, destination: input.Destination } : undefined);
  const onSuccess = toDestination(config?.OnSuccess);
  const onFailure = toDestination(config?.OnFailure);
  if (!onSuccess && !onFailure) return undefined;
  return { ...(onSuccess ? { onSuccess } : {}), ...(onFailure ? { onFailure } : {}) };
}

function checkSpec(spec: FunctionSpec): string[] {
  const problems: string[] = [];
  // AWS function names: letters, digits, hyphens and underscores, up to 64 characters.
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(spec.name)) problems.push(`${spec.name}: expected a function name of up to 64 letters, digits, - and _`);
  for (const key of Object.keys(spec.environment)) {
    if (!VARIABLE_NAME.test(key)) problems.push(`${spec.name}.Environment.Variables.${key}: expected a name of letters, digits and _ that starts with a letter, at least 2 characters`);
    else if (RESERVED_VARIABLES.has(key)) problems.push(`${spec.name}.Environment.Variables.${key}: reserved by the runtime`);
  }
  const variablesBytes = Buffer.byteLength(JSON.stringify(spec.environment));
  if (variablesBytes > MAX_VARIABLES_BYTES) problems.push(`${spec.name}.Environment.Variables: ${variablesBytes} bytes, over Lambda's limit of ${MAX_VARIABLES_BYTES} for all variables together`);
  return problems;
}

function describeIssue(issue: ZodIssue): string {
  const at = issue.path.join('.');
  if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => `${at ? `${at}.` : ''}${key}: unsupported key`).join('; ');
  return `${at || '(top level)'}: ${issue.message}`;
}

function invalid(file: string, problems: string[]): FunctionApiError {
  return new FunctionApiError(400, 'InvalidParameterValueException', `${file}: ${problems.join('; ')}`);
}
