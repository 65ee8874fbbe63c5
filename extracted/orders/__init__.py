"""The orders service, cut out of the monolith as an AWS Lambda function.

``handler.lambda_handler`` answers ALB target events and API Gateway HTTP API (payload
2.0) events with the same routes (aws-lambda-powertools' event handler). Orders live in
DynamoDB (``store``); stock stays with its owner, the monolith, which this function
calls through its internal API with an idempotency key per order (``owner``).
"""
