"""cfn-lint rules for the ALB and metric filter limits that cfn-lint's own schema leaves
unchecked.

Run them with cfn-lint's ``--append-rules`` (``strangler render lint-rules-path`` prints
the folder)::

    cfn-lint --append-rules "$(strangler render lint-rules-path)" template.yaml

E9101  a target group weight in a forward action outside 0-999
E9102  more than 5 target groups in one forward action
E9103  a forward action's stickiness duration outside 1-604,800 seconds
E9111  a metric filter dimension whose value is no log event field ($.field, $field)
E9112  a metric transformation with both Dimensions and a DefaultValue
"""
