import { defineIntegration } from '@latchkey/core';
import { httpRequestParams, sendRequest } from './action.js';
import {
  httpBasicAuth,
  httpBearerToken,
  httpHeaderAuth,
  httpOAuth2AuthorizationCode,
  httpOAuth2ClientCredentials,
  httpQueryAuth,
} from './credentials.js';

export const httpRequest = defineIntegration({
  id: 'http-request',
  displayName: 'HTTP Request',
  description:
    'Call any HTTP API with a bearer token, Basic auth, a custom header or a query parameter, or through an OAuth2 connection.',
  nodeType: 'httpRequest',
  baseUrls: {},
  credentialTypes: [
    httpBearerToken,
    httpBasicAuth,
    httpHeaderAuth,
    httpQueryAuth,
    httpOAuth2AuthorizationCode,
    httpOAuth2ClientCredentials,
  ],
  params: httpRequestParams,
  destinationParam: 'url',
  action: sendRequest,
});

export default httpRequest;
export { isForbiddenCredentialHeader } from './credentials.js';
export {
  httpBasicAuth,
  httpBearerToken,
  httpHeaderAuth,
  httpOAuth2AuthorizationCode,
  httpOAuth2ClientCredentials,
  httpQueryAuth,
  httpRequestParams,
};
