import { useMutation } from '@tanstack/react-query';
import { useState } from 'react';
import { FormProvider, useForm } from 'react-hook-form';
import { errorCode, errorMessage, fieldIssues, queryClient, trpc } from '../api/trpc';
import { Link, navigate, nextPath, paths } from '../app/router';
import { applyFieldIssues } from '../schema-form/SchemaFields';
import { ErrorAlert, Notice } from '../ui/Feedback';
import { SubmitButton } from '../ui/SubmitButton';
import { TextField } from '../ui/TextField';
import { AuthCard } from './AuthCard';

async function afterAuthentication() {
  // A different user may have been signed in before: nothing of theirs may stay in the cache.
  queryClient.clear();
  await queryClient.fetchQuery(trpc.auth.me.queryOptions());
  navigate(nextPath() ?? '/', { replace: true });
}

interface SignInValues {
  email: string;
  password: string;
}

export function SignInPage() {
  const form = useForm<SignInValues>({ defaultValues: { email: '', password: '' } });
  const signIn = useMutation(trpc.auth.signIn.mutationOptions());
  const next = nextPath();

  const onSubmit = form.handleSubmit(async (values) => {
    try {
      await signIn.mutateAsync(values);
      form.reset();
      signIn.reset();
      await afterAuthentication();
    } catch (error) {
      applyFieldIssues(fieldIssues(error), new Set(['email', 'password']), form.setError);
    }
  });

  const failure =
    signIn.error && errorCode(signIn.error) === 'UNAUTHORIZED'
      ? 'That email and password do not match an account.'
      : signIn.error && fieldIssues(signIn.error).length === 0
        ? errorMessage(signIn.error)
        : null;

  return (
    <AuthCard title="Sign in" subtitle="Manage the credentials your workflows use.">
      <FormProvider {...form}>
        <form className="stack" onSubmit={onSubmit} noValidate>
          <ErrorAlert>{failure}</ErrorAlert>
          <TextField name="email" label="Email" type="email" autoComplete="username" required autoFocus />
          <TextField
            name="password"
            label="Password"
            type="password"
            autoComplete="current-password"
            required
          />
          <SubmitButton pendingLabel="Signing in…" block>
            Sign in
          </SubmitButton>
        </form>
      </FormProvider>
      <p className="auth-switch">
        New to Latchkey? <Link href={paths.signUp(next ?? undefined)}>Create an account</Link>
      </p>
    </AuthCard>
  );
}

interface SignUpValues {
  name: string;
  email: string;
  password: string;
}

export function SignUpPage() {
  const form = useForm<SignUpValues>({ defaultValues: { name: '', email: '', password: '' } });
  const signUp = useMutation(trpc.auth.signUp.mutationOptions());
  const next = nextPath();
  // The server's neutral answer when no account was created (it does not say whether the email is taken).
  const [notSignedIn, setNotSignedIn] = useState<string | null>(null);

  const onSubmit = form.handleSubmit(async (values) => {
    setNotSignedIn(null);
    try {
      const result = await signUp.mutateAsync(values);
      if (!result.user) {
        form.resetField('password');
        setNotSignedIn(result.message);
        return;
      }
      form.reset();
      signUp.reset();
      await afterAuthentication();
    } catch (error) {
      applyFieldIssues(fieldIssues(error), new Set(['name', 'email', 'password']), form.setError);
    }
  });

  const failure = signUp.error && fieldIssues(signUp.error).length === 0 ? errorMessage(signUp.error) : null;

  return (
    <AuthCard title="Create your account" subtitle="Store API keys once, use them safely in every workflow.">
      <FormProvider {...form}>
        <form className="stack" onSubmit={onSubmit} noValidate>
          <ErrorAlert>{failure}</ErrorAlert>
          {notSignedIn && (
            <div role="status">
              <Notice>
                {notSignedIn} <Link href={paths.signIn(next ?? undefined)}>Go to sign in</Link>
              </Notice>
            </div>
          )}
          <TextField name="name" label="Your name" autoComplete="name" required autoFocus />
          <TextField
            name="email"
            label="Email"
            type="email"
            autoComplete="email"
            required
            rules={{
              pattern: {
                value: /^[^\s@]+@[^\s@]+$/,
                message: 'Enter an email address like you@example.com.',
              },
            }}
          />
          <TextField
            name="password"
            label="Password"
            type="password"
            autoComplete="new-password"
            required
            help="At least 10 characters. A passphrase of a few words is easy to remember and hard to guess."
            rules={{ minLength: { value: 10, message: 'Password must be at least 10 characters long.' } }}
          />
          <SubmitButton pendingLabel="Creating account…" block>
            Create account
          </SubmitButton>
        </form>
      </FormProvider>
      <p className="auth-switch">
        Already have an account? <Link href={paths.signIn(next ?? undefined)}>Sign in</Link>
      </p>
    </AuthCard>
  );
}
