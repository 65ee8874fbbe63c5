"""The AWS side of the facade: routing.yaml → ALB configuration, rendered or applied.

The stages, each a module:

1. ``alb``: the validated route table → the **desired** listener (rules in priority
   order, each with its conditions and a weighted forward action; the default action),
   with AWS's names for every target group. A table AWS cannot express (a stable-key
   route: ALB hashes nothing) fails here, with the route and the reason.
2. ``cloudformation``: the desired listener → a CloudFormation template (target groups,
   the Lambda invoke permissions, the listener and its rules): ``strangler render alb``.
3. ``live``: what the listener holds now, read through ``client`` (the one module that
   calls AWS), reduced to the same shapes as the desired state.
4. ``plan``: desired vs live → a ``Plan``, a tuple of frozen steps (create a target
   group, create / modify / delete a rule, set priorities, change the default action).
   An empty plan means no drift.
5. ``executor``: ``DisplayExecutor`` prints a plan, ``AwsExecutor`` carries it out in
   that order and, when a call fails part-way, undoes what it had done in reverse. ``plan``
   and ``apply`` differ only in the executor.
"""
