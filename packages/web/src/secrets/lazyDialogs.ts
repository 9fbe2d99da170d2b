import { lazyDialog } from '../ui/lazyDialog';

// The secrets page's dialogs (and react-hook-form, which they use) load when first opened: the list itself
// needs none of them (docs/performance.md "Assets").
export const CreateSecretDialog = lazyDialog(
  () => import('./CreateSecretDialog').then((m) => m.CreateSecretDialog),
  (props) => props.open,
);
export const ImportN8nDialog = lazyDialog(
  () => import('./ImportN8nDialog').then((m) => m.ImportN8nDialog),
  (props) => props.open,
);
export const DeleteSecretDialog = lazyDialog(
  () => import('./SecretDialogs').then((m) => m.DeleteSecretDialog),
  (props) => props.secret !== null,
);
export const RotateSecretDialog = lazyDialog(
  () => import('./SecretDialogs').then((m) => m.RotateSecretDialog),
  (props) => props.secret !== null,
);
export const RenameSecretDialog = lazyDialog(
  () => import('./RenameSecretDialog').then((m) => m.RenameSecretDialog),
  (props) => props.secret !== null,
);
