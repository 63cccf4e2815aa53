"""The other side of the wire: a fake Slack Web API on 127.0.0.1, and a Slack that sends
signed requests to our app.

    with FakeSlack() as slack:
        slack.add_team("T1", "xoxb-t1")
        settings = load_settings(SLACK_API_URL=slack.api_url, SLACK_BOT_TOKEN="xoxb-t1", ...)
        ...
        slack.fail("chat.postMessage", status=429, retry_after=1)   # next call is rate limited
        slack.set_channel("C9", "archived")                          # posts answer is_archived
        slack.add_user("T1", "U1", "ada@example.org")                # users.info knows U1's address
        slack.fail("chat.postMessage", status=500, after=True)       # Slack posts it, then answers 500

It answers like Slack: HTTP 200 with `{"ok": false, "error": ...}` for API errors,
HTTP 429 with Retry-After for rate limits, `invalid_blocks` for blocks Slack would
refuse (more than 50, section text over 3,000 characters...). Every call is recorded.

The package: web_api (the fake Web API), blocks (what Slack refuses), sender (signed
requests to our app), catalog (a seeded database).
"""

from tests.fake_slack.blocks import validate_blocks
from tests.fake_slack.catalog import seed_catalog
from tests.fake_slack.sender import SlackSender
from tests.fake_slack.web_api import Call, FakeSlack

__all__ = ["Call", "FakeSlack", "SlackSender", "seed_catalog", "validate_blocks"]
