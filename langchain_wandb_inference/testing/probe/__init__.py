"""``wb-inference probe``: check what the package assumes about the live service.

One bounded, cheap run (a budget cap, enforced by the package's own ``Budget``) observes
each assumption against the configured service and reports *expected (contract) ->
observed -> ok/differs*, with scrubbed cassettes of every exchange.  The modules:

* ``assumptions``: every assumption and its expected value, the one place they live;
* ``wire``: raw requests (the service's own bytes, not our client's reading of them);
* ``read``: those bytes in the probe's wording; ``steps``: what is asked, in order;
* ``run``: the run itself, under the budget; ``report``: the Markdown/JSON report, scanned
  for secrets before anything is written.

``python -m langchain_wandb_inference.testing.learn REPORT.json`` turns a shared report
into the list of emulator and catalog changes it calls for.
"""
