export * from './contract.js';
export * from './destinations.js';
export * from './fields.js';
export * from './http.js';
export * from './registry.js';
export * from './roles.js';
export * from './secret-forms.js';
export * from './validation.js';
