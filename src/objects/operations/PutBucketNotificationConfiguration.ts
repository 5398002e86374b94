import { randomBytes } from 'node:crypto';
import { errors } from '../errors.js';
import { functionNameOf, validateRules, type NotificationRule } from '../events.js';
import { MAX_MARKUP, parseXml } from '../xml.js';
import { sendEmpty, smallBody, type Operation } from './context.js';
import { changeRules } from './notification-rules.js';

/**
 * S3 PutBucketNotificationConfiguration with function targets (CloudFunctionConfiguration or
 * LambdaFunctionConfiguration, a local name or a Lambda ARN); an empty configuration removes all
 * rules. SNS and SQS targets do not exist here: InvalidArgument.
 */
export const putBucketNotificationConfiguration: Operation = async (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  const parsed = (await parseXml(await smallBody(request, res), MAX_MARKUP.configuration))?.NotificationConfiguration;
  if (parsed === undefined) throw errors.malformedXml();
  const configuration = typeof parsed === 'object' ? parsed : {};
  if (configuration.TopicConfiguration || configuration.QueueConfiguration) {
    throw errors.invalidArgument('Only function destinations (CloudFunctionConfiguration) are supported by this gateway', 'Destination', 'SNS/SQS');
  }
  const rules = [...(configuration.CloudFunctionConfiguration ?? []), ...(configuration.LambdaFunctionConfiguration ?? [])]
    .map((element: Record<string, any>) => ruleOf(element));
  validateRules(rules, context.functions);
  // S3: the configuration replaces the bucket's whole one
  await changeRules(context.objects, request.bucket, () => rules);
  sendEmpty(res, 200);
};

function ruleOf(element: Record<string, any>): NotificationRule {
  if (typeof element !== 'object' || element === null) throw errors.malformedXml();
  const target = element.CloudFunction ?? element.LambdaFunctionArn ?? element.Function;
  if (typeof target !== 'string') throw errors.malformedXml();
  const name = functionNameOf(target);
  if (!name) throw errors.invalidArgument('Invalid ARN', 'CloudFunction', target);
  const events = (element.Event ?? []) as unknown[];
  if (events.some((event) => typeof event !== 'string')) throw errors.malformedXml();
  const rule: NotificationRule = {
    id: typeof element.Id === 'string' && element.Id ? element.Id : randomBytes(12).toString('base64'),
    functionArn: target,
    function: name,
    events: events as string[],
  };
  for (const filterRule of (element.Filter?.S3Key?.FilterRule ?? []) as Array<{ Name?: unknown; Value?: unknown }>) {
    const kind = typeof filterRule?.Name === 'string' ? filterRule.Name.toLowerCase() : '';
    const value = typeof filterRule?.Value === 'string' ? filterRule.Value : '';
    if (kind !== 'prefix' && kind !== 'suffix') throw errors.invalidArgument('filter rule name must be either prefix or suffix', 'FilterRule', String(filterRule?.Name));
    if (rule[kind] !== undefined) throw errors.invalidArgument(`Cannot specify more than one ${kind} rule in a filter.`, 'FilterRule', kind);
    rule[kind] = value;
  }
  return rule;
}
