import { el } from '../xml.js';
import { sendXml, type Operation } from './context.js';
import { rulesOf } from './notification-rules.js';

/** S3 GetBucketNotificationConfiguration: function targets as CloudFunctionConfiguration elements, as S3 returns them. */
export const getBucketNotificationConfiguration: Operation = (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  sendXml(res, 200, 'NotificationConfiguration', rulesOf(context.objects, request.bucket).map((rule) => el('CloudFunctionConfiguration', [
    el('Id', rule.id),
    el('CloudFunction', rule.functionArn),
    ...rule.events.map((event) => el('Event', event)),
    rule.prefix !== undefined || rule.suffix !== undefined
      ? el('Filter', [el('S3Key', [
        rule.prefix !== undefined ? el('FilterRule', [el('Name', 'Prefix'), el('Value', rule.prefix)]) : '',
        rule.suffix !== undefined ? el('FilterRule', [el('Name', 'Suffix'), el('Value', rule.suffix)]) : '',
      ])])
      : '',
  ])));
};
