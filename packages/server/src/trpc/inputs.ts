import { hasControlCharacters } from '@latchkey/core';
import { ROLES } from '@latchkey/core/roles';
import { z } from 'zod';

/** Shared input pieces: bounded, trimmed, and without control characters. */
export const id = z.string().min(1).max(64);
export const displayName = z
  .string()
  .trim()
  .min(1)
  .max(120)
  .refine((v) => !hasControlCharacters(v), { error: 'Must not contain control characters' });
export const email = z.email().max(254);
export const password = z.string().min(10, { error: 'Must be at least 10 characters' }).max(1024);
export const plan = z.enum(['personal', 'team']);
export const role = z.enum(ROLES);
export const nodeType = z.string().min(1).max(64);
export const workspaceInput = z.object({ workspaceId: id });
