from django.db import migrations, models


class Migration(migrations.Migration):
    """Each bulk forcing row carries the inputs its staff member confirmed; a row changed since is not forced."""

    dependencies = [
        ('subsidy_access_policy', '0005_bulk_forcing_jobs'),
    ]

    operations = [
        migrations.AddField(
            model_name='bulkforcingrow',
            name='confirmed_inputs',
            field=models.CharField(blank=True, default='', help_text="The fingerprint of the record's inputs as the staff member confirmed them: the worker forces the record only if it still has those inputs (empty: nothing was confirmed, so it is not forced).", max_length=64),
        ),
        migrations.AlterField(
            model_name='bulkforcingrow',
            name='result',
            field=models.CharField(blank=True, choices=[('', 'pending'), ('redeemed', 'redeemed'), ('already_redeemed', 'already redeemed'), ('errored', 'errored'), ('busy', 'not forced: another forcing held the record'), ('inputs_changed', 'not forced: its inputs changed after they were confirmed')], db_index=True, default='', help_text='Empty while the row waits for the worker.', max_length=32),
        ),
    ]
