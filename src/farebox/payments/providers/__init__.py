"""Payment providers behind one small port (`base.PaymentProvider`): the built-in
sandbox for the embedded default and tests, and Stripe."""
