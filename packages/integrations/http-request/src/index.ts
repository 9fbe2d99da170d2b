import { defineIntegration } from '@latchkey/core';
import { httpRequestParams, sendRequest } from './action.js';
import { httpBasicAuth, httpBearerToken, httpHeaderAuth, httpQueryAuth } from './credentials.js';

export const httpRequest = defineIntegration({
  id: 'http-request',
  displayName: 'HTTP Request',
  description: 'Call any HTTP API with a Bearer token, Basic auth or a custom header.',
  nodeType: 'httpRequest',
  baseUrls: {},
  credentialTypes: [httpBearerToken, httpBasicAuth, httpHeaderAuth, httpQueryAuth],
  params: httpRequestParams,
  destinationParam: 'url',
  action: sendRequest,
});

export default httpRequest;
export { isForbiddenCredentialHeader } from './credentials.js';
export { httpBasicAuth, httpBearerToken, httpHeaderAuth, httpQueryAuth, httpRequestParams };
