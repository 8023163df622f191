"""The billing portal and the operator console: server-rendered Jinja pages
that work without JavaScript.  They call the same services as the API."""
