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

/** An instant: an ISO date-time with offset, or a date (UTC midnight; as an end, the end of that day). */
const instant = (end: boolean) =>
  z
    .union([z.iso.datetime({ offset: true }), z.iso.date()])
    .transform((value) =>
      value.length === 10
        ? new Date(Date.parse(`${value}T00:00:00Z`) + (end ? 86_400_000 : 0))
        : new Date(value),
    );

/** The audit log's filters, shared by `audit.list` and the export route (docs/api.md). */
export const auditFilter = z.object({
  actions: z
    .array(
      z
        .string()
        .max(64)
        .regex(/^[a-z][a-z_]*\.[a-z][a-z_]*$/, { error: 'Must be an event type such as secret.used' }),
    )
    .max(50)
    .optional(),
  actorId: id.optional(),
  targetId: id.optional(),
  from: instant(false).optional(),
  to: instant(true).optional(),
});
