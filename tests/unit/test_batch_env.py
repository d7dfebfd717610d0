"""The AWS_BATCH_* variables, as AWS Batch sets them for each kind of job."""

from batchyard.domain.batch_env import batch_environment


def test_a_single_job_before_and_after_its_first_attempt():
    assert batch_environment("j1", "q", None, None) == {
        "AWS_BATCH_JOB_ID": "j1",
        "AWS_BATCH_JQ_NAME": "q",
    }
    assert batch_environment("j1", "q", "ce", 2) == {
        "AWS_BATCH_JOB_ID": "j1",
        "AWS_BATCH_JQ_NAME": "q",
        "AWS_BATCH_CE_NAME": "ce",
        "AWS_BATCH_JOB_ATTEMPT": "2",
    }


def test_an_array_child_has_its_index_and_the_arrays_size():
    env = batch_environment("p:3", "q", "ce", 1, array_index=3, array_size=10)
    assert env["AWS_BATCH_JOB_ARRAY_INDEX"] == "3"
    assert env["AWS_BATCH_JOB_ARRAY_SIZE"] == "10"
    # index 0 is an index, not "none"
    assert batch_environment("p:0", "q", "ce", 1, 0, 2)["AWS_BATCH_JOB_ARRAY_INDEX"] == "0"
    assert "AWS_BATCH_JOB_ARRAY_SIZE" not in batch_environment("p:0", "q", "ce", 1, 0)
