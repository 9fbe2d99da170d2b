/**
 * A stand-in for api.twilio.com on 127.0.0.1 (LATCHKEY_BASE_URL_TWILIO): the account resource and
 * Messages.json of one account. It accepts only `Basic base64(accountSid:authToken)` of that account (or of
 * one API key's `sid:secret`) and
 * answers as Twilio does, including its error codes (20003 bad credential, 21211 invalid `To`, 20404).
 */
import { answerJson, FakeService } from '@latchkey/core/testing/fake-service';

/** Twilio's magic test number for "not a valid phone number" (error 21211). */
export const INVALID_TO = '+15005550001';

export const FAKE_MESSAGE_SID = `SM${'0f'.repeat(16)}`;

export function fakeTwilio(account: {
  accountSid: string;
  authToken: string;
  /** An API key of the account (SID and secret), accepted like the Auth Token. */
  apiKey?: { sid: string; secret: string };
}): FakeService {
  const { accountSid, authToken, apiKey } = account;
  const basic = (user: string, password: string) =>
    `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  const accepted = new Set([
    basic(accountSid, authToken),
    ...(apiKey ? [basic(apiKey.sid, apiKey.secret)] : []),
  ]);
  const rejected = {
    code: 20003,
    message: 'Authenticate',
    more_info: 'https://www.twilio.com/docs/errors/20003',
    status: 401,
  };
  return new FakeService('Twilio', {
    normal(req, res) {
      if (!accepted.has(req.headers.authorization ?? '')) {
        answerJson(res, 401, rejected);
      } else if (req.method === 'GET' && req.path === `/2010-04-01/Accounts/${accountSid}.json`) {
        answerJson(res, 200, { sid: accountSid, friendly_name: 'Fake account', status: 'active' });
      } else if (req.method === 'POST' && req.path === `/2010-04-01/Accounts/${accountSid}/Messages.json`) {
        const form = new URLSearchParams(req.body);
        if (form.get('To') === INVALID_TO) {
          answerJson(res, 400, {
            code: 21211,
            message: `The 'To' number ${INVALID_TO} is not a valid phone number.`,
            more_info: 'https://www.twilio.com/docs/errors/21211',
            status: 400,
          });
        } else {
          answerJson(res, 201, {
            sid: FAKE_MESSAGE_SID,
            status: 'queued',
            to: form.get('To'),
            from: form.get('From'),
            body: form.get('Body'),
          });
        }
      } else {
        answerJson(res, 404, { code: 20404, message: 'The requested resource was not found', status: 404 });
      }
    },
    unauthorized(_req, res) {
      answerJson(res, 401, rejected);
    },
  });
}
